"""CHOCO-gossip when nodes come and go (``--availability``): frozen copies, caught up on return.

Every neighbour of node i holds x̂_i, its public copy, and CHOCO keeps them identical by
applying the same decoded delta q_i everywhere (Koloskova, Stich, Jaggi 2019, Algorithm 2).
A node offline in a round neither trains nor sends, so x̂_i of an offline i stays frozen at
every holder; but an online i updates x̂_i while an offline neighbour k misses the delta.
So both ends of each edge keep the same two flags, from the schedule alone (no message):
``owed[k]`` at i (k missed some update of x̂_i) and ``behind[i]`` at k (the same fact). In the
next round both are online, i first sends k its x̂_i uncompressed and k takes it as its copy,
exactly; then the round's compressed deltas go as usual. Each node's packets are numbered by
its own online rounds, which every holder counts from the schedule too.

Mixing uses the round's online Metropolis row: x_i += γ Σ_j W_ij(t) (x̂_j − x̂_i) over the online
neighbours j, W(t) symmetric, so the step preserves Σ x_i over each round's online set once the
copies agree, as they do after the catch-up.
"""

from __future__ import annotations

from typing import Any

import torch

from fedgossip.algorithms.catch_up import exact_exchange
from fedgossip.algorithms.context import GossipContext
from fedgossip.comm.conversation import Conversation, Exchange
from fedgossip.comm.references import NeighbourCopies
from fedgossip.topology.online import online_metropolis_row

__all__ = ["IntermittentChoco"]


class IntermittentChoco:
    """One node's CHOCO-gossip under an availability schedule: its copies and what each edge missed."""

    def __init__(self, ctx: GossipContext, flat: torch.Tensor, neighbours: tuple[int, ...], gamma: float):
        self.ctx = ctx
        self.neighbours = neighbours
        self.gamma = gamma
        # x̂_i and each x̂_j; its weighted sum is not kept (the weights change with the online set)
        self.copies = NeighbourCopies(ctx.initial_reference(flat), 0.0, dict.fromkeys(neighbours, 0.0))
        self.owed = dict.fromkeys(neighbours, False)  # the neighbour missed an update of x̂_i
        self.behind = dict.fromkeys(neighbours, False)  # this node missed an update of x̂_j
        self.sent_by = dict.fromkeys(neighbours, 0)  # each neighbour's packets so far: its online rounds
        self._decoded = torch.empty(flat.numel(), dtype=torch.float32)

    def conversation(self, flat: torch.Tensor, round_index: int) -> Conversation:
        """Run round ``round_index`` on this node: catch-ups, the deltas, the consensus step."""
        online = self.ctx.online(round_index)
        me = self.ctx.node
        live = tuple(j for j in self.neighbours if online[me] and online[j])
        owed = tuple(j for j in live if self.owed[j])
        behind = tuple(j for j in live if self.behind[j])
        expected = {j: self.sent_by[j] for j in live}
        self._note_the_round(online)  # the schedule's facts of this round, alike at both ends
        if not online[me]:
            return  # offline: no steps, no messages, its copies frozen
        copies, codec = self.copies, self.ctx.codec
        caught_up = yield from exact_exchange(self.ctx, copies.own, owed, behind)
        for peer, public in caught_up.items():
            copies.neighbours[peer].copy_(public)
        sequence = copies.sequence
        packet = codec.pack(flat - copies.own, sequence)
        received = yield Exchange(dict.fromkeys(live, packet), live)
        copies.own.add_(codec.unpack(packet[0], me, sequence, out=self._decoded).to(flat.device))
        copies.sequence += 1
        for peer, buffer in received.items():
            decoded = codec.unpack(buffer, peer, expected[peer], out=self._decoded)
            copies.neighbours[peer].add_(decoded.to(flat.device))
        row = online_metropolis_row(self.ctx.topology, online, me)
        step = torch.zeros_like(flat)
        for peer in live:
            step.add_(copies.neighbours[peer] - copies.own, alpha=row[peer])
        flat.add_(step, alpha=self.gamma)

    def _note_the_round(self, online) -> None:
        me = self.ctx.node
        for j in self.neighbours:
            if online[me] and online[j]:
                self.owed[j] = self.behind[j] = False  # caught up in this round's first stage
            elif online[me]:
                self.owed[j] = True  # x̂_i moves this round, unseen by j
            elif online[j]:
                self.behind[j] = True  # x̂_j moves this round, unseen here
            if online[j]:
                self.sent_by[j] += 1

    def state_dict(self) -> dict[str, Any]:
        return {
            "copies": self.copies.state_dict(),
            "owed": [int(j) for j, flag in self.owed.items() if flag],
            "behind": [int(j) for j, flag in self.behind.items() if flag],
            "sent_by": {int(j): int(count) for j, count in self.sent_by.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.copies.load_state_dict(state["copies"])
        self.owed = {j: j in set(state["owed"]) for j in self.neighbours}
        self.behind = {j: j in set(state["behind"]) for j in self.neighbours}
        sent_by = {int(j): int(count) for j, count in state["sent_by"].items()}
        self.sent_by = {j: sent_by[j] for j in self.neighbours}
