"""One vector's pull toward its neighbourhood, Σ_j W_ij (v_j − v_i): exact, or through CHOCO public copies.

Gradient tracking mixes two vectors a round (the model and its direction) and D² one; each
needs, per node, how far the Metropolis-weighted neighbourhood lies from the node's own value.
Uncompressed that is computed from the neighbours' values themselves, so v_i + pull is the plain
average Σ_j W_ij v_j. Under a lossy code the neighbours only ever see compressed changes: every
node keeps public copies v̂ (the copies of :class:`~fedgossip.comm.references.PublicCopies`, bit-
identical at both ends of an edge) and the pull is γ Σ_j W_ij (v̂_j − v̂_i), CHOCO-gossip's consensus
step (Koloskova, Stich, Jaggi 2019, Algorithm 2, line 8). Summed over the nodes the pull is zero
either way, W being symmetric with rows summing to one: a mixed quantity's total is kept exactly.
"""

from __future__ import annotations

from typing import Any

import torch

from fedgossip.algorithms.context import GossipContext
from fedgossip.comm.conversation import Exchange
from fedgossip.comm.references import PublicCopies
from fedgossip.topology.mixing import metropolis_row

__all__ = ["NeighbourhoodPull", "PullConversation"]

PullConversation = Any  # a conversation (generator of requests) whose return value is the pull


class NeighbourhoodPull:
    """Σ_j W_ij (v_j − v_i) of one node's vector, one exchange with every neighbour a call.

    ``kind`` tags the packets (the wire header's field) so that two pulls of one algorithm,
    whose packets travel in the same order on every edge, cannot be mistaken for each other;
    ``initial`` is what every public copy starts as (used under a lossy code only), and
    ``consensus_step`` is γ there.
    """

    def __init__(self, ctx: GossipContext, kind: int, initial: torch.Tensor, consensus_step: float | None):
        self.ctx = ctx
        self.kind = kind
        row = metropolis_row(ctx.topology, ctx.node)
        self.neighbors = ctx.topology.neighbors(ctx.node)
        self.self_weight = row[ctx.node]
        self.weights = {j: row[j] for j in self.neighbors}
        self.consensus_step = consensus_step
        self.copies = None
        if ctx.compressed:
            self.copies = PublicCopies(initial, self.self_weight, self.weights)
            self._decoded = torch.empty(initial.numel(), dtype=torch.float32)  # decode target, reused

    def pull(self, vector: torch.Tensor) -> PullConversation:
        """Exchange ``vector`` (or its compressed change) with the neighbours; return the pull."""
        if not self.neighbors:
            return torch.zeros_like(vector)
        if self.copies is None:
            return (yield from self._exact(vector))
        return (yield from self._compressed(vector, self.copies))

    def _exact(self, vector: torch.Tensor) -> PullConversation:
        codec = self.ctx.codec
        packet = codec.pack(vector, kind=self.kind)
        received = yield Exchange(dict.fromkeys(self.neighbors, packet), self.neighbors)
        # Σ_j W_ij v_j − v_i, the row summing to one
        pull = vector * (self.self_weight - 1.0)
        for peer, buffer in received.items():
            pull.add_(codec.unpack(buffer, peer, kind=self.kind).to(vector.device), alpha=self.weights[peer])
        return pull

    def _compressed(self, vector: torch.Tensor, copies: PublicCopies) -> PullConversation:
        codec, sequence = self.ctx.codec, copies.sequence
        packet = codec.pack(vector - copies.own, sequence, self.kind)  # q_i = Q(v_i − v̂_i)
        received = yield Exchange(dict.fromkeys(self.neighbors, packet), self.neighbors)
        # the node decodes its own packet as its neighbours do, so every copy of v̂_i has the same bits
        own = codec.unpack(packet[0], self.ctx.node, sequence, out=self._decoded, kind=self.kind)
        copies.add_own(own.to(vector.device))
        for peer, buffer in received.items():
            decoded = codec.unpack(buffer, peer, sequence, out=self._decoded, kind=self.kind)
            copies.add_neighbor(peer, decoded.to(vector.device))
        copies.sequence += 1
        return (copies.mixed - copies.own) * self.consensus_step  # γ (s_i − v̂_i)

    def state_dict(self) -> dict[str, Any] | None:
        """Return the public copies (``None`` uncompressed, where the pull keeps nothing between rounds)."""
        return None if self.copies is None else self.copies.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.copies is not None:
            self.copies.load_state_dict(state)
