"""The availability schedule of a run: which nodes are online in each round.

Built once from ``--availability`` before training. Every rank builds it alike from the
run seed (or the trace file) with no message, which is what lets a rank skip an offline
peer without waiting for it: the seed passed here must be the same on every rank. For
``--async`` the rows index interaction windows instead of rounds.
"""

from __future__ import annotations

import numpy as np

from fedgossip.errors import ConfigError
from fedgossip.settings.availability_spec import Availability

__all__ = ["AvailabilitySchedule"]


class AvailabilitySchedule:
    """The online mask of a run, ``[rounds, nodes]``, and what the run reports of it."""

    def __init__(
        self, availability: Availability, num_nodes: int, rounds: int, seed: int, server: int | None = None
    ) -> None:
        """``server``: a node that only aggregates (fedavg's) is infrastructure, online every round.

        A run with a server then needs an online client in every round, checked here for the whole run.
        """
        self.spec = availability.spec
        self._mask = availability.schedule(num_nodes, rounds, seed)
        if server is not None:
            self._mask[:, server] = True
            clients = np.delete(self._mask, server, axis=1)
            empty = np.flatnonzero(~clients.any(axis=1)) if clients.shape[1] else np.arange(rounds)
            if empty.size:
                raise ConfigError(
                    f"availability {self.spec!r} leaves no client online in {empty.size} of {rounds} "
                    f"rounds (round {empty[0]} first) with seed {seed}; the server (node {server}) "
                    "counts as always online: raise the online probability or fill the trace's gaps"
                )
        self._mask.setflags(write=False)

    @property
    def num_nodes(self) -> int:
        return self._mask.shape[1]

    @property
    def rounds(self) -> int:
        return self._mask.shape[0]

    def online(self, t: int) -> np.ndarray:
        """Return round ``t``'s online mask over the nodes (read-only bool vector)."""
        if not 0 <= t < self.rounds:
            raise IndexError(f"expecting a round in range({self.rounds}), got {t}")
        return self._mask[t]

    def is_online(self, node: int, t: int) -> bool:
        """Say whether node ``node`` trains and communicates in round ``t``."""
        return bool(self.online(t)[node])

    def online_nodes(self, t: int) -> tuple[int, ...]:
        """Return round ``t``'s online nodes, ascending."""
        return tuple(np.flatnonzero(self.online(t)).tolist())

    def online_rounds(self, upto: int | None = None) -> np.ndarray:
        """Return how many of the first ``upto`` rounds (all by default) each node was online."""
        return self._mask[: self.rounds if upto is None else upto].sum(axis=0)

    def mean_online_fraction(self) -> float:
        """Return the fraction of node-rounds online (1.0 for ``always``)."""
        return float(self._mask.mean()) if self._mask.size else 1.0
