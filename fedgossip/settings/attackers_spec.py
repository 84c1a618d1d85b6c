"""``--attackers``: which nodes attack, by id (``3,7``) or as a seeded share (``fraction=0.125``).

The ids are resolved once the run's node count is known (:meth:`Attackers.resolve`);
a fraction is drawn from the run seed, so every rank picks the same nodes and a
rerun the same ones. No torch, no MPI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fedgossip.errors import ConfigError

__all__ = ["Attackers", "parse_attackers"]

_DRAW_STREAM = 7  # the attackers' draw, apart from every other use of the run seed

_EXAMPLE = "--attackers 3,7 (node ids) or --attackers fraction=0.125"


@dataclass(frozen=True)
class Attackers:
    """The attacking nodes: ``ids`` given, or a ``fraction`` of the eligible nodes drawn from the seed."""

    ids: tuple[int, ...] = ()
    fraction: float | None = None

    def resolve(self, nodes: int, seed: int, server: int | None = None) -> tuple[int, ...]:
        """Return the attacking node ids of a run of ``nodes`` nodes, sorted; refuse ids outside it."""
        eligible = [node for node in range(nodes) if node != server]
        if self.fraction is None:
            outside = [node for node in self.ids if node >= nodes]
            if outside:
                raise ConfigError(
                    f"--attackers {','.join(map(str, outside))}: the run has nodes 0-{nodes - 1}; "
                    "name nodes inside it"
                )
            if server is not None and server in self.ids:
                raise ConfigError(f"--attackers: node {server} is the server, which is trusted; name clients")
            if len(set(self.ids) & set(eligible)) >= len(eligible):
                named = ",".join(map(str, self.ids))
                raise ConfigError(f"--attackers {named} makes every node an attacker; leave some honest")
            return tuple(sorted(self.ids))
        count = max(1, math.floor(self.fraction * len(eligible) + 1e-9))
        if count >= len(eligible):
            raise ConfigError(
                f"--attackers fraction={self.fraction} makes all {len(eligible)} nodes attackers; "
                "leave some honest"
            )
        rng = np.random.default_rng([seed, _DRAW_STREAM])
        return tuple(sorted(int(node) for node in rng.choice(eligible, size=count, replace=False)))


def parse_attackers(text: str) -> Attackers | None:
    """Parse ``--attackers`` (``none``: no attackers)."""
    value = text.strip()
    if value == "none":
        return None
    if value.startswith("fraction="):
        try:
            fraction = float(value.removeprefix("fraction="))
        except ValueError:
            fraction = math.nan
        if not 0 < fraction < 1:
            raise ConfigError(f"--attackers {text}: the fraction must lie in (0, 1), e.g. {_EXAMPLE}")
        return Attackers(fraction=fraction)
    pieces = [piece.strip() for piece in value.split(",")]
    if not all(piece.isdigit() for piece in pieces):
        raise ConfigError(f"--attackers {text}: give {_EXAMPLE}")
    ids = tuple(int(piece) for piece in pieces)
    if len(set(ids)) != len(ids):
        raise ConfigError(f"--attackers {text} names a node twice; name each once")
    return Attackers(ids=ids)
