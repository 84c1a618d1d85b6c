"""Asynchronous SwarmSGD for one node: offers and replies, with no node waiting on a round.

Protocol (DESIGN §4, Nadiradze et al. 2021). A node that finishes its local
steps sends an *offer*, its model (or, compressed, Q(x − ref) against the
edge's reference), to a random neighbour, remembers ``s``, its model as the
neighbour will see it, and goes on computing. The neighbour, when its rank
next polls (between local steps), replies with its pre-averaging model x̂_j
and averages, x_j ← (x_j + s)/2. The initiator, on the reply, applies
x_i ← x_i + (x̂_j − s)/2. The two updates cancel in the sum, so uncompressed
gossip preserves the mean of the models exactly, whatever else happened in
between.

- Packets go through the rank's :class:`~fedgossip.comm.async_transport.AsyncTransport`,
  in memory to a co-hosted neighbour, by MPI otherwise; it delivers each
  sender's packets in the order sent, so the per-edge references and their
  sequence numbers stay identical at both ends. The header's kind byte says
  offer or reply.
- A node has at most one offer in flight; if it is still unanswered when the
  next is due, the rank serves all its nodes while it waits (idle time).
  Under ``--availability`` it waits at most a window, then makes no offer in that
  window: its partner may be away, and no node waits on an away one
  (:mod:`fedgossip.run.away_windows`).
- Termination (:func:`~fedgossip.algorithms.asynchronous.finish`): a rank whose
  nodes have made all their offers and had them answered enters an ``Ibarrier``
  and keeps serving until every rank has entered it. Then no offer is
  unanswered anywhere, so nothing is left in flight.
- With ``--link``, a received packet is held until its stamped delivery time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fedgossip.algorithms.asynchronous import AsyncGossip, GossipStats
from fedgossip.algorithms.catch_up import exact_exchange
from fedgossip.algorithms.context import GossipContext
from fedgossip.comm.async_transport import AsyncTransport
from fedgossip.comm.conversation import Conversation
from fedgossip.comm.references import EdgeReferences
from fedgossip.compress.wire import packet_kind
from fedgossip.errors import WireError

__all__ = ["OFFER", "REPLY", "AsyncSwarm"]

OFFER, REPLY = 1, 2  # the header's kind byte
_TRANSPORT = "swarm.async-transport"  # the rank's transport, in GossipContext.shared


@dataclass
class _Offer:
    partner: int
    seen: torch.Tensor  # s: this node's model as the partner will see it
    steps_at_offer: int


class AsyncSwarm(AsyncGossip):
    """One node's side of asynchronous pairwise gossip; the schedule drives it between steps.

    ``flat`` is the node's model, which the rank's polls average in place whenever
    this node's packets are delivered.
    """

    def __init__(self, ctx: GossipContext, flat: torch.Tensor, rng: np.random.Generator):
        self.ctx = ctx
        self.node = ctx.node
        self.flat = flat
        self.rng = rng  # this node's own draws of partners: nothing to agree on
        self.neighbors = sorted(ctx.topology.neighbors(ctx.node))
        self.references = (
            EdgeReferences(ctx.initial_reference(flat), self.neighbors) if ctx.compressed else None
        )
        # Uncompressed packets carry whole models; their sequence numbers are kept here.
        self._sent_sequence = dict.fromkeys(self.neighbors, 0)
        self._received_sequence = dict.fromkeys(self.neighbors, 0)
        self._decoded = torch.empty(flat.numel(), dtype=torch.float32)
        transport = ctx.shared.get(_TRANSPORT)
        if transport is None:  # the first node of its rank
            transport = ctx.shared[_TRANSPORT] = AsyncTransport(ctx.network)
        self.transport = transport
        transport.attach(self.node, self._handle)
        self._pending: _Offer | None = None
        self.steps = 0  # local steps taken so far, told by the training loop
        self.stats = GossipStats()

    @property
    def waiting_for_reply(self) -> bool:
        return self._pending is not None

    def offer(self, flat: torch.Tensor, online: np.ndarray | None = None) -> None:
        """Send an offer to a random (online) neighbour; the reply is applied by a later poll."""
        if self._pending is not None:
            raise RuntimeError("an offer is still unanswered; call wait_for_reply first")
        candidates = self.neighbors if online is None else [j for j in self.neighbors if online[j]]
        if not candidates:
            return  # a single node, or every neighbour away: no one to gossip with
        partner = int(self.rng.choice(candidates))
        self._send(partner, flat, OFFER)
        seen = self.references.sent[partner] if self.references is not None else flat
        self._pending = _Offer(partner, seen.detach().clone(), self.steps)

    def catch_up(self, flat: torch.Tensor) -> Conversation:
        """Compressed: start both references of every edge from the exact models (after lost nodes).

        Run once by every node, synchronously over the network, on gossip set up afresh.
        """
        if self.references is None:
            return
        neighbours = tuple(self.neighbors)
        self.references.start_from(flat, (yield from exact_exchange(self.ctx, flat, neighbours, neighbours)))

    def state_dict(self) -> dict[str, Any]:
        """Return this node's gossip state at a quiet moment (after ``finish``): nothing in flight.

        Only then is the state consistent with the neighbours' (every offer answered,
        both ends of each edge at the same sequence number), which is why an
        asynchronous run is checkpointed right after a ``finish``.
        """
        if self._pending is not None or not self.transport.quiet(self.node):
            raise RuntimeError("asynchronous gossip can be saved only when nothing is in flight; call finish")
        return {
            "rng": self.rng.bit_generator.state,
            "references": None if self.references is None else self.references.state_dict(),
            "sent_sequence": [self._sent_sequence[j] for j in self.neighbors],
            "received_sequence": [self._received_sequence[j] for j in self.neighbors],
            "steps": self.steps,
            "stats": dataclasses.asdict(self.stats),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` into gossip built for the same node and graph."""
        if (state["references"] is None) != (self.references is None):
            raise ValueError("the checkpoint and this run disagree on whether gossip is compressed")
        if len(state["sent_sequence"]) != len(self.neighbors):
            raise ValueError("the checkpoint was written for another set of neighbours")
        self.rng.bit_generator.state = state["rng"]
        if self.references is not None:
            self.references.load_state_dict(state["references"])
        self._sent_sequence = dict(zip(self.neighbors, map(int, state["sent_sequence"]), strict=True))
        self._received_sequence = dict(zip(self.neighbors, map(int, state["received_sequence"]), strict=True))
        self.steps = int(state["steps"])
        self.stats = GossipStats(**state["stats"])

    def _send(self, peer: int, flat: torch.Tensor, kind: int) -> None:
        codec = self.ctx.codec
        if self.references is None:
            sequence = self._sent_sequence[peer]
            self._sent_sequence[peer] += 1
            buffer, values = codec.pack(flat, sequence, kind)
        else:
            sequence = self.references.sent_sequence[peer]
            buffer, values = codec.pack(self.references.delta_to(peer, flat), sequence, kind)
            own = codec.unpack(buffer, self.node, sequence, out=self._decoded)
            self.references.commit_sent(peer, own.to(flat.device))
        self.transport.send(self.node, peer, buffer, values)

    def _receive(self, source: int, buffer: np.ndarray, kind: int, device: torch.device) -> torch.Tensor:
        """Decode a packet from ``source``; return this node's copy of the sender's model."""
        codec = self.ctx.codec
        if self.references is None:
            sequence = self._received_sequence[source]
            self._received_sequence[source] += 1
            return codec.unpack(buffer, source, sequence, out=self._decoded, kind=kind).to(device)
        sequence = self.references.received_sequence[source]
        theirs = codec.unpack(buffer, source, sequence, out=self._decoded, kind=kind)
        self.references.commit_received(source, theirs.to(device))
        return self.references.received[source]

    def _handle(self, source: int, buffer: np.ndarray) -> None:
        """Answer an offer or apply a reply from node ``source`` (the transport's handler)."""
        flat = self.flat
        if source not in self._sent_sequence:
            raise WireError(f"node {source} is not a neighbour of node {self.node} but sent it a packet")
        kind = packet_kind(buffer)
        if kind == OFFER:
            theirs = self._receive(source, buffer, OFFER, flat.device)
            self._send(source, flat, REPLY)  # the pre-averaging model, before flat changes
            flat.add_(theirs).mul_(0.5)
            self.stats.offers_served += 1
        elif kind == REPLY:
            pending = self._pending
            if pending is None or pending.partner != source:
                raise WireError(f"node {source} replied to an offer node {self.node} did not make")
            theirs = self._receive(source, buffer, REPLY, flat.device)
            flat.add_(theirs - pending.seen, alpha=0.5)
            self.stats.interactions += 1
            self.stats.staleness_steps += self.steps - pending.steps_at_offer
            self._pending = None
        else:
            raise WireError(f"malformed packet from node {source}: kind {kind} is neither offer nor reply")
