"""``dpsgd``: synchronous neighbour averaging (Lian et al. 2017), CHOCO-gossip when compressed.

Uncompressed, each round is x_i ← Σ_j W_ij x_j with Metropolis weights. With a
lossy compressor, models cannot be averaged directly: every node keeps public
copies and sends only the compressed change of its own (Koloskova, Stich,
Jaggi 2019, "Decentralized Stochastic Optimization and Gossip Algorithms with
Compressed Communication", Algorithm 2, CHOCO-SGD).

Faulty neighbours (``--attack``, ``--robust``, fedgossip.byzantine): an attacker sends each
neighbour its own forgery (with a lossy code, Q(forgery − that neighbour's copy of it), so its
packets stay valid); an honest node replaces the average by the aggregator A: uncompressed
x_i ← A(x_i; x_j), compressed x_i += γ (A(x̂_i; x̂_j) − x̂_i) over the public copies — with ``clip``,
x_i += γ Σ_j W_ij clip(x̂_j − x̂_i, τ), ClippedGossip's self-centred clipping (He, Karimireddy &
Jaggi 2022, eq. 3) applied to CHOCO's consensus step, centred on the node's own public copy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from fedgossip.algorithms.base import Algorithm, check_state
from fedgossip.algorithms.catch_up import exact_exchange
from fedgossip.algorithms.cohosted_mixing import CoHostedMixing, cohosted_mixing
from fedgossip.algorithms.consensus_step import ConsensusStep
from fedgossip.algorithms.context import GossipContext
from fedgossip.algorithms.intermittent_choco import IntermittentChoco
from fedgossip.comm.conversation import Conversation, Exchange
from fedgossip.comm.references import NeighbourCopies, PublicCopies
from fedgossip.errors import ConfigError
from fedgossip.registry import check_params
from fedgossip.specs import Param
from fedgossip.topology.mixing import metropolis_row
from fedgossip.topology.online import online_metropolis_row

if TYPE_CHECKING:
    pass

__all__ = ["DPSGD"]


class DPSGD(ConsensusStep, Algorithm):
    """Average with every neighbour each round: x_i ← Σ_j W_ij x_j, or CHOCO-gossip with a lossy code."""

    robust_place = "gossip"
    survives_lost_nodes = True
    params = (
        Param("gamma", float, None, "CHOCO-gossip's consensus step, by default the compressor's", gt=0, le=1),
    )

    def __init__(self, gamma: float | None = None):
        if gamma is not None:
            check_params(type(self), gamma=gamma)
        self.gamma = gamma  # γ as given; None: the compressor's (Compressor.consensus_step)

    def setup(self, ctx: GossipContext, flat: torch.Tensor) -> None:
        super().setup(ctx, flat)
        row = metropolis_row(ctx.topology, ctx.node)  # this node's row only: no n×n matrix per node
        self._neighbors = ctx.topology.neighbors(ctx.node)
        self._self_weight = row[ctx.node]
        self._weights = {j: row[j] for j in self._neighbors}
        # γ of Algorithm 2, line 8 (see _choco); None: plain averaging, no consensus step
        self.consensus_step = self.checked_consensus_step(ctx.codec.compressor)
        self.copies = None
        # What an attacker last heard from each neighbour, uncompressed (compressed: its copies);
        # every node starts from the same model, so that is what it knows before round 1.
        self._seen: dict[int, torch.Tensor] = {}
        if ctx.attack is not None and not ctx.compressed:
            self._seen = {j: ctx.initial_reference(flat) for j in self._neighbors}
        self._forged: dict[int, torch.Tensor] | None = None  # an attacker's x̂ as each neighbour holds it
        # CHOCO under --availability: copies frozen while a node is away, caught up on its return
        self._intermittent: IntermittentChoco | None = None
        if ctx.compressed and ctx.availability is not None:
            if ctx.attack is not None or ctx.aggregator is not None:
                raise ConfigError(
                    "--availability with a lossy --compressor (CHOCO-gossip) cannot be combined with "
                    "--attack or --robust yet; use --compressor none or --availability always"
                )
            self._intermittent = IntermittentChoco(ctx, flat, self._neighbors, self.consensus_step)
        elif ctx.compressed:
            one_by_one = ctx.attack is not None or ctx.aggregator is not None
            kind = NeighbourCopies if one_by_one else PublicCopies
            self.copies = kind(ctx.initial_reference(flat), self._self_weight, self._weights)
            self._decoded = torch.empty(flat.numel(), dtype=torch.float32)  # decode target, reused
            if ctx.attack is not None:
                self._forged = {j: ctx.initial_reference(flat) for j in self._neighbors}
        self._mixing: CoHostedMixing | None = None  # co-hosted neighbours as one product, not packets
        self._remote = self._neighbors
        if ctx.stacked_gossip and self.copies is None:
            self._mixing = cohosted_mixing(ctx)
            self._mixing.register(ctx.node, flat)
            hosted = set(self._mixing.hosted)
            self._cohosted = tuple(j for j in self._neighbors if j in hosted)
            self._remote = tuple(j for j in self._neighbors if j not in hosted)

    def availability_problem(self, compressor) -> str | None:
        return None  # CHOCO-gossip too: fedgossip.algorithms.intermittent_choco

    def catch_up(self, flat: torch.Tensor) -> Conversation:
        """CHOCO: start every public copy from the exact model, x̂_j = x_j, after lost nodes were dropped."""
        if self.copies is None:
            return
        models = yield from exact_exchange(self.ctx, flat, self._neighbors, self._neighbors)
        self.copies.start_from(flat, models)

    def conversation(self, flat: torch.Tensor, round_index: int) -> Conversation:
        if not self._neighbors:
            return
        if self._intermittent is not None:
            yield from self._intermittent.conversation(flat, round_index)
            return
        online = self.ctx.online(round_index)
        if online is not None and not online[self.ctx.node]:
            return  # offline: it neither sends nor mixes, and nobody waits for it
        if self._mixing is not None:
            yield from self._average_stacked(flat, round_index, self._mixing)
        elif self.copies is None:
            yield from self._average(flat, *self._row(online))
        elif self._forged is not None:
            yield from self._choco_forged(flat, self.copies, self._forged)
        else:
            yield from self._choco(flat, self.copies)

    def state_dict(self) -> dict[str, Any]:
        """Return the public copies (``None`` uncompressed): CHOCO-gossip's memory of past rounds.

        An attacker also saves what it last heard (uncompressed) and its forged copies.
        """
        state: dict[str, Any] = {"copies": None if self.copies is None else self.copies.state_dict()}
        if self._intermittent is not None:
            state["intermittent"] = self._intermittent.state_dict()
        if self.ctx.attack is not None:
            state["seen"] = {peer: vector.clone() for peer, vector in self._seen.items()}  # {}: compressed
            state["forged"] = (
                None if self._forged is None else {j: v.clone() for j, v in self._forged.items()}
            )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the public copies, after ``setup`` with the same compressor, model and graph."""
        check_state(self.name, state, self.state_dict())
        if self.copies is not None:
            self.copies.load_state_dict(state["copies"])
        if self._intermittent is not None:
            self._intermittent.load_state_dict(state["intermittent"])
        if self.ctx.attack is not None:
            for peer, vector in self._seen.items():
                vector.copy_(state["seen"][peer])
            if self._forged is not None:
                for peer, vector in self._forged.items():
                    vector.copy_(state["forged"][peer])

    def _row(self, online) -> tuple[tuple[int, ...], dict[int, float], float]:
        """Return this round's neighbours, their weights and the self weight (online ones only)."""
        if online is None:
            return self._neighbors, self._weights, self._self_weight
        row = online_metropolis_row(self.ctx.topology, online, self.ctx.node)
        self_weight = row.pop(self.ctx.node)
        return tuple(row), row, self_weight

    def _average(
        self, flat: torch.Tensor, neighbors: tuple[int, ...], weights: dict[int, float], self_weight: float
    ) -> Conversation:
        codec = self.ctx.codec
        if self.ctx.attack is None:
            outgoing = dict.fromkeys(neighbors, codec.pack(flat)) if neighbors else {}
        else:  # one forged model per neighbour (dissensus aims at each receiver)
            outgoing = {j: codec.pack(self.ctx.forge(flat, self._seen, j)) for j in neighbors}
        received = yield Exchange(outgoing, neighbors)
        models = {
            peer: codec.unpack(buffer, peer).to(flat.device) for peer, buffer in sorted(received.items())
        }
        if self.ctx.attack is not None:
            for peer, model in models.items():
                self._seen[peer].copy_(model)
        aggregator = self.ctx.aggregator
        if aggregator is not None and self.ctx.attack is None:
            listed = [weights[peer] for peer in models]
            flat.copy_(aggregator.combine(flat, list(models.values()), listed, self_weight))
            return
        # W is doubly stochastic, so Σ_i x_i is preserved: the mean model never drifts (over the
        # online nodes, under --availability: the online subgraph's W is doubly stochastic too).
        mixed = flat * self_weight
        for peer, model in models.items():
            mixed.add_(model, alpha=weights[peer])
        flat.copy_(mixed)

    def _average_stacked(self, flat: torch.Tensor, round_index: int, mixing: CoHostedMixing) -> Conversation:
        """x_i ← W_ii x_i + Σ_j W_ij x_j: co-hosted j by one product on the rank, others by packets."""
        codec, traffic = self.ctx.codec, self.ctx.traffic
        online = self.ctx.online(round_index)
        cohosted, remote = self._cohosted, self._remote
        if online is not None:  # this round's online neighbours only
            cohosted = tuple(j for j in cohosted if online[j])
            remote = tuple(j for j in remote if online[j])
        _, weights, self_weight = self._row(online)
        packet = codec.pack(flat) if remote else None
        received = yield Exchange(dict.fromkeys(remote, packet), remote)
        for peer in cohosted:  # counted as the packets the product stands for
            traffic.record_send(peer, codec.max_packet, codec.count, within=True)
            traffic.record_receive(peer, codec.max_packet)
        mixed = flat * self_weight
        mixed.add_(mixing.local_sum(self.ctx.node, round_index, online))  # before any co-hosted change
        for peer, buffer in received.items():
            mixed.add_(codec.unpack(buffer, peer).to(flat.device), alpha=weights[peer])
        flat.copy_(mixed)

    def _choco(self, flat: torch.Tensor, copies: PublicCopies) -> Conversation:
        codec, sequence = self.ctx.codec, copies.sequence
        # q_i = Q(x_i − x̂_i): only the change since the last message travels (Algorithm 2, line 4).
        packet = codec.pack(flat - copies.own, sequence)
        received = yield Exchange(dict.fromkeys(self._neighbors, packet), self._neighbors)
        # x̂_j += q_j for j ∈ N(i) ∪ {i} (line 7); this node decodes its own packet exactly as the
        # neighbours do, so every holder of x̂_i has the same bits.
        copies.add_own(codec.unpack(packet[0], self.ctx.node, sequence, out=self._decoded).to(flat.device))
        for peer, buffer in received.items():
            copies.add_neighbor(peer, codec.unpack(buffer, peer, sequence, out=self._decoded).to(flat.device))
        copies.sequence += 1
        aggregator = self.ctx.aggregator
        if aggregator is None:
            # x_i += γ Σ_j W_ij (x̂_j − x̂_i) = γ (s_i − x̂_i), the rows of W summing to one (line 8).
            flat.add_(copies.mixed - copies.own, alpha=self.consensus_step)
            return
        # Robust: x_i += γ (A(x̂_i; x̂_j) − x̂_i), the aggregator A over the public copies; with clip,
        # γ Σ_j W_ij clip(x̂_j − x̂_i, τ): ClippedGossip's self-centred clipping (He et al. 2022,
        # eq. 3) applied to CHOCO's consensus step, centred on the node's own public copy.
        neighbours = copies.neighbours
        weights = [self._weights[peer] for peer in neighbours]
        combined = aggregator.combine(copies.own, list(neighbours.values()), weights, self._self_weight)
        flat.add_(combined - copies.own, alpha=self.consensus_step)

    def _choco_forged(
        self, flat: torch.Tensor, copies: NeighbourCopies, forged: dict[int, torch.Tensor]
    ) -> Conversation:
        """An attacker's CHOCO round: to each neighbour Q(forged − its copy of this node), valid packets.

        Each neighbour's copy of this node is tracked apart (``forged``), since each is sent its
        own forgery; the attacker keeps its copies of the neighbours, from which it forges, and
        trains on but does not mix its own model.
        """
        codec, sequence = self.ctx.codec, copies.sequence
        outgoing = {}
        for peer in self._neighbors:
            target = self.ctx.forge(flat, copies.neighbours, peer)
            outgoing[peer] = packet = codec.pack(target - forged[peer], sequence)
            forged[peer].add_(
                codec.unpack(packet[0], self.ctx.node, sequence, out=self._decoded).to(flat.device)
            )
        received = yield Exchange(outgoing, self._neighbors)
        for peer, buffer in received.items():
            copies.add_neighbor(peer, codec.unpack(buffer, peer, sequence, out=self._decoded).to(flat.device))
        copies.sequence += 1
