"""``swarm``: randomized pairwise gossip (SwarmSGD, Nadiradze et al.), synchronous rounds.

Each round every rank draws the same random maximal matching of the graph
from the run seed, and matched pairs average their models. The asynchronous
variant, where nobody waits, is its own mode.
"""

from __future__ import annotations

import torch

from fedgossip.algorithms.base import Algorithm, GossipContext, round_rng
from fedgossip.topology.matching import partner_of, random_matching

__all__ = ["Swarm"]

_MATCHING_STREAM = 1


class Swarm(Algorithm):
    """Average with one random neighbour per round: x_i, x_j ← (x_i + x_j) / 2."""

    def setup(self, ctx: GossipContext, flat: torch.Tensor) -> None:
        super().setup(ctx, flat)
        self.require_lossless(ctx, "per-edge references")
        self._exchange = ctx.exchange()

    def communicate(self, flat: torch.Tensor, round_index: int) -> None:
        # Same seed and round on every rank → the same matching everywhere, with no messages.
        matching = random_matching(self.ctx.topology, round_rng(self.ctx.seed, round_index, _MATCHING_STREAM))
        partner = int(partner_of(matching, self.ctx.size)[self.ctx.rank])
        if partner < 0:
            return
        received = self._exchange.exchange({partner: self.ctx.codec.pack(flat)}, [partner])
        other = self.ctx.codec.unpack(received[partner], partner).to(flat.device)
        # a + b is commutative in floating point, so both ends compute the identical average.
        flat.add_(other).mul_(0.5)
