"""``dpsgd``: synchronous neighbour averaging with Metropolis–Hastings weights (Lian et al. 2017)."""

from __future__ import annotations

import torch

from fedgossip.algorithms.base import Algorithm, GossipContext
from fedgossip.topology.mixing import metropolis_row

__all__ = ["DPSGD"]


class DPSGD(Algorithm):
    """Average with every neighbour each round: x_i ← Σ_j W_ij x_j (Metropolis weights)."""

    def setup(self, ctx: GossipContext, flat: torch.Tensor) -> None:
        super().setup(ctx, flat)
        self.require_lossless(ctx, "CHOCO public copies")
        row = metropolis_row(ctx.topology, ctx.rank)  # this rank's row only: no n×n matrix per rank
        self._neighbors = ctx.topology.neighbors(ctx.rank)
        self._self_weight = row[ctx.rank]
        self._weights = {j: row[j] for j in self._neighbors}
        self._exchange = ctx.exchange()

    def communicate(self, flat: torch.Tensor, round_index: int) -> None:
        if not self._neighbors:
            return
        packet = self.ctx.codec.pack(flat)
        received = self._exchange.exchange(dict.fromkeys(self._neighbors, packet), self._neighbors)
        # W is doubly stochastic, so Σ_i x_i is preserved: the mean model never drifts.
        mixed = flat * self._self_weight
        for peer, buffer in received.items():
            mixed.add_(self.ctx.codec.unpack(buffer, peer).to(flat.device), alpha=self._weights[peer])
        flat.copy_(mixed)
