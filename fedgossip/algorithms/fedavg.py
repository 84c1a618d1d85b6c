"""``fedavg``: federated averaging over a star (McMahan et al.), rank 0 the server.

Each round a fraction of the clients, drawn identically on every rank from the
run seed, trains locally and sends its delta against the global model; the
server averages the deltas weighted by sample count and sends every client the
change of the global model. Both directions travel as deltas through the
codec, and server and clients apply the *decoded* global delta to their copy
of the global model, so all copies stay identical by construction.
"""

from __future__ import annotations

import numpy as np
import torch

from fedgossip.algorithms.base import Algorithm, GossipContext, round_rng
from fedgossip.errors import ConfigError

__all__ = ["FedAvg"]

_SELECTION_STREAM = 2


class FedAvg(Algorithm):
    """Average sampled clients' deltas on a server, weighted by their sample counts."""

    server = 0

    def setup(self, ctx: GossipContext, flat: torch.Tensor) -> None:
        super().setup(ctx, flat)
        if ctx.size < 2:
            raise ConfigError("fedavg needs a server and at least one client: run with 2 or more ranks")
        self._clients = np.arange(1, ctx.size)
        self._global = flat.detach().clone()  # every rank's copy of the global model
        self._exchange = ctx.exchange()

    def selected(self, round_index: int) -> np.ndarray:
        """Return the clients sampled in ``round_index`` (identical on every rank)."""
        count = max(1, round(self.ctx.client_fraction * len(self._clients)))
        rng = round_rng(self.ctx.seed, round_index, _SELECTION_STREAM)
        return np.sort(rng.choice(self._clients, size=count, replace=False))

    def trains(self, rank: int, round_index: int) -> bool:
        return rank != self.server and rank in self.selected(round_index)

    def communicate(self, flat: torch.Tensor, round_index: int) -> None:
        chosen = [int(c) for c in self.selected(round_index)]
        codec, rank = self.ctx.codec, self.ctx.rank
        if rank == self.server:
            received = self._exchange.exchange({}, chosen)
            weights = self.ctx.sample_counts[chosen].astype(np.float64)
            update = torch.zeros_like(flat)
            for client, weight in zip(chosen, weights / weights.sum(), strict=True):
                update.add_(codec.unpack(received[client], client).to(flat.device), alpha=float(weight))
            packet = codec.pack(update)
            outgoing = dict.fromkeys((int(c) for c in self._clients), packet)
            self._exchange.exchange(outgoing, [])
            change = codec.unpack(packet[0], rank)  # apply what the clients will decode, not `update`
        else:
            outgoing = {self.server: codec.pack(flat - self._global)} if rank in chosen else {}
            received = self._exchange.exchange(outgoing, [self.server])
            change = codec.unpack(received[self.server], self.server)
        self._global.add_(change.to(flat.device))
        flat.copy_(self._global)
