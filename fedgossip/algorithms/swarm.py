"""``swarm``: randomized pairwise gossip (SwarmSGD, Nadiradze et al. 2021), synchronous rounds.

Each round every node draws the same random maximal matching of the graph
from the run seed, and matched pairs average their models. With a lossy
compressor each edge keeps references at both ends and only the compressed
change against the reference travels (DESIGN §4). The asynchronous variant,
where nobody waits, is its own mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fedgossip.algorithms.base import Algorithm, check_state, round_rng
from fedgossip.algorithms.catch_up import exact_exchange
from fedgossip.algorithms.context import GossipContext
from fedgossip.algorithms.swarm_async import AsyncSwarm
from fedgossip.comm.conversation import Conversation, Exchange
from fedgossip.comm.references import EdgeReferences
from fedgossip.topology.matching import partner_of, random_matching
from fedgossip.topology.online import online_subgraph

__all__ = ["Swarm"]

_MATCHING_STREAM = 1


class Swarm(Algorithm):
    """Average with one random neighbour per round: x_i, x_j ← (x_i + x_j) / 2."""

    supports_async = True
    robust_place = "pair"  # synchronous rounds only
    survives_lost_nodes = True

    def start_async(self, flat: torch.Tensor, rng: np.random.Generator) -> AsyncSwarm:
        return AsyncSwarm(self.ctx, flat, rng)

    def availability_problem(self, compressor) -> str | None:
        return None  # matched pairs are both online, so per-edge references stay paired under a lossy code

    def setup(self, ctx: GossipContext, flat: torch.Tensor) -> None:
        super().setup(ctx, flat)
        self.references = None
        if ctx.compressed:
            neighbors = ctx.topology.neighbors(ctx.node)
            self.references = EdgeReferences(ctx.initial_reference(flat), neighbors)
            self._decoded = torch.empty(flat.numel(), dtype=torch.float32)  # decode target, reused
        # An attacker's last model from each neighbour; all start from the same model.
        neighbours = ctx.topology.neighbors(ctx.node) if ctx.attack is not None else ()
        self._seen = {j: ctx.initial_reference(flat) for j in neighbours}

    def catch_up(self, flat: torch.Tensor) -> Conversation:
        """Compressed: start both references of every edge from the exact models (after lost nodes)."""
        if self.references is None:
            return
        neighbours = tuple(self.references.neighbors)
        self.references.start_from(flat, (yield from exact_exchange(self.ctx, flat, neighbours, neighbours)))

    def conversation(self, flat: torch.Tensor, round_index: int) -> Conversation:
        partner = self._partner(round_index)
        if partner < 0:
            return
        sent = flat if self.ctx.attack is None else self.ctx.forge(flat, self._seen, partner)
        if self.references is None:
            received = yield Exchange({partner: self.ctx.codec.pack(sent)}, [partner])
            other = self.ctx.codec.unpack(received[partner], partner).to(flat.device)
        else:
            other = yield from self._exchange_delta(sent, partner, self.references)
        if self.ctx.attack is not None:
            self._seen[partner].copy_(other)  # what it knows of its neighbours: the last model each sent
        aggregator = self.ctx.aggregator
        if aggregator is not None and self.ctx.attack is None:
            # x ← x + ½ clip(x_j − x, τ): the partner's pull bounded (ClippedGossip, one neighbour)
            flat.copy_(aggregator.combine(flat, [other], [0.5], 0.5))
            return
        # a + b is commutative in floating point, so uncompressed both ends compute the identical average.
        flat.add_(other).mul_(0.5)

    def _partner(self, round_index: int) -> int:
        """Return this node's partner in ``round_index``'s matching (-1: none), drawn alike everywhere.

        Same seed and round on every node → the same matching everywhere, with no messages.
        The co-hosted nodes of a rank draw it once between them. Under --availability it
        matches the round's online subgraph: an offline node has no partner.
        """
        drawn = self.ctx.shared.get("swarm.matching")
        if drawn is None or drawn[0] != round_index:
            rng = round_rng(self.ctx.seed, round_index, _MATCHING_STREAM)
            online = self.ctx.online(round_index)
            graph = self.ctx.topology if online is None else online_subgraph(self.ctx.topology, online)
            matching = random_matching(graph, rng)
            drawn = self.ctx.shared["swarm.matching"] = (round_index, partner_of(matching, self.ctx.size))
        return int(drawn[1][self.ctx.node])

    def state_dict(self) -> dict[str, Any]:
        """Return the per-edge references (``None`` uncompressed); the matchings come from the round index."""
        state = {"references": None if self.references is None else self.references.state_dict()}
        if self.ctx.attack is not None:
            state["seen"] = {peer: vector.clone() for peer, vector in self._seen.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the per-edge references, after ``setup`` with the same compressor, model and graph."""
        check_state(self.name, state, self.state_dict())
        if self.references is not None:
            self.references.load_state_dict(state["references"])
        for peer, vector in self._seen.items():
            vector.copy_(state["seen"][peer])

    def _exchange_delta(self, flat: torch.Tensor, partner: int, references: EdgeReferences) -> Conversation:
        """Send Q(x − ref) to ``partner``, apply both deltas, and return this node's copy of its model."""
        codec = self.ctx.codec
        sent_sequence = references.sent_sequence[partner]
        packet = codec.pack(references.delta_to(partner, flat), sent_sequence)
        received = yield Exchange({partner: packet}, [partner])
        own = codec.unpack(packet[0], self.ctx.node, sent_sequence, out=self._decoded)
        references.commit_sent(partner, own.to(flat.device))
        expected = references.received_sequence[partner]
        theirs = codec.unpack(received[partner], partner, expected, out=self._decoded)
        references.commit_received(partner, theirs.to(flat.device))
        return references.received[partner]
