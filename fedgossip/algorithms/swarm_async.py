"""Asynchronous SwarmSGD for one rank: offers, replies and termination, with no rank waiting on a round.

Protocol (DESIGN §4, Nadiradze et al. 2021). A rank that finishes its local
steps sends an *offer*, its model (or, compressed, Q(x − ref) against the
edge's reference), to a random neighbour, remembers ``s``, its model as the
neighbour will see it, and goes on computing. The neighbour, when it next
polls (between its own local steps), replies with its pre-averaging model
x̂_j and averages, x_j ← (x_j + s)/2. The initiator, on the reply, applies
x_i ← x_i + (x̂_j − s)/2. The two updates cancel in the sum, so uncompressed
gossip preserves the mean of the models exactly, whatever else happened in
between.

- Every payload uses the one gossip tag: MPI keeps per-pair order, so the
  per-edge references and their sequence numbers stay identical at both ends;
  the header's kind byte says offer or reply.
- A rank has at most one offer in flight; if it is still unanswered when
  the next is due, the rank serves others while it waits (idle time).
- Termination: a rank that has made all its offers and had them answered
  enters an ``Ibarrier`` and keeps serving until every rank has entered it.
  Then no offer is unanswered anywhere, so nothing is left in flight.
- Polling is a matched probe for any source, which costs almost nothing
  when nothing has arrived; waiting loops yield the core instead of sleeping.
- With ``--link``, a received packet is held until its stamped delivery time.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from mpi4py import MPI

from fedgossip.algorithms.asynchronous import AsyncGossip, GossipStats
from fedgossip.algorithms.context import GossipContext
from fedgossip.comm.references import EdgeReferences
from fedgossip.compress.wire import delivery_time, packet_kind
from fedgossip.errors import FedGossipError, WireError

__all__ = ["OFFER", "REPLY", "AsyncSwarm"]

OFFER, REPLY = 1, 2  # the header's kind byte


@dataclass
class _Offer:
    partner: int
    seen: torch.Tensor  # s: this rank's model as the partner will see it
    steps_at_offer: int


class AsyncSwarm(AsyncGossip):
    """One rank's side of asynchronous pairwise gossip; the training loop drives it between steps."""

    def __init__(self, ctx: GossipContext, flat: torch.Tensor, rng: np.random.Generator):
        self.ctx = ctx
        self.rng = rng  # this rank's own draws of partners: nothing to agree on
        self.neighbors = sorted(ctx.topology.neighbors(ctx.rank))
        self.references = (
            EdgeReferences(ctx.initial_reference(flat), self.neighbors) if ctx.compressed else None
        )
        # Uncompressed packets carry whole models; their sequence numbers are kept here.
        self._sent_sequence = dict.fromkeys(self.neighbors, 0)
        self._received_sequence = dict.fromkeys(self.neighbors, 0)
        self._decoded = torch.empty(flat.numel(), dtype=torch.float32)
        self._exchange = ctx.exchange()
        self._sending: list[tuple[MPI.Request, np.ndarray]] = []  # buffers live until their Isend completes
        self._held: dict[int, deque[tuple[float, np.ndarray]]] = {}  # per source, awaiting --link delivery
        self._pending: _Offer | None = None
        self.steps = 0  # local steps taken so far, told by the training loop
        self.stats = GossipStats()

    @property
    def waiting_for_reply(self) -> bool:
        return self._pending is not None

    def offer(self, flat: torch.Tensor) -> None:
        """Send an offer to a random neighbour; the reply is applied by a later poll."""
        if self._pending is not None:
            raise RuntimeError("an offer is still unanswered; call wait_for_reply first")
        if not self.neighbors:
            return  # a single rank has no one to gossip with
        partner = int(self.rng.choice(self.neighbors))
        self._send(partner, flat, OFFER)
        seen = self.references.sent[partner] if self.references is not None else flat
        self._pending = _Offer(partner, seen.detach().clone(), self.steps)

    def poll(self, flat: torch.Tensor) -> None:
        """Take in what has arrived and handle what has been delivered; never waits."""
        with self.ctx.traffic.timed():
            while (arrived := self._exchange.receive_any()) is not None:
                source, buffer = arrived
                now = time.time()
                deliver_at = now
                if self._exchange.uplink is not None:
                    deliver_at = max(now, self._exchange.delivery_deadline(delivery_time(buffer)))
                    # the emulated link holds it this much longer than MPI took
                    self.ctx.traffic.link_seconds += deliver_at - now
                self._held.setdefault(source, deque()).append((deliver_at, buffer))
            now = time.time()
            for source, queue in self._held.items():
                # in arrival order per source: the references and sequence numbers depend on it
                while queue and queue[0][0] <= now:
                    self._handle(source, queue.popleft()[1], flat)
            self._sending = [(request, buffer) for request, buffer in self._sending if not request.Test()]

    def wait_for_reply(self, flat: torch.Tensor) -> None:
        """Serve others until this rank's offer is answered."""
        start = time.perf_counter()
        while self._pending is not None:
            self.poll(flat)
            if self._pending is not None:
                self._idle()
        self.stats.idle_s += time.perf_counter() - start

    def finish(self, flat: torch.Tensor, between_polls: Callable[[], None] | None = None) -> None:
        """Return once every rank has finished, serving offers until then.

        ``between_polls`` is called while waiting, so other non-blocking work
        (the evaluation's reductions) progresses too.
        """
        self.wait_for_reply(flat)
        start = time.perf_counter()
        barrier = self.ctx.comm.Ibarrier()
        while not barrier.Test():
            self.poll(flat)
            if between_polls is not None:
                between_polls()
            self._idle()
        if any(self._held.values()):
            raise FedGossipError(f"rank {self.ctx.rank} still held packets after every rank had finished")
        MPI.Request.Waitall([request for request, _ in self._sending])
        self._sending = []
        self.stats.idle_s += time.perf_counter() - start

    def state_dict(self) -> dict[str, Any]:
        """Return this rank's gossip state at a quiet moment (after :meth:`finish`): nothing in flight.

        Only then is the state consistent with the neighbours' (every offer answered,
        both ends of each edge at the same sequence number), which is why an
        asynchronous run is checkpointed right after a :meth:`finish`.
        """
        if self._pending is not None or self._sending or any(self._held.values()):
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
        """Restore a state from :meth:`state_dict` into gossip built for the same rank and graph."""
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

    def _idle(self) -> None:
        # Nothing to do until a message arrives: let another rank on this core compute.
        os.sched_yield()

    def _send(self, peer: int, flat: torch.Tensor, kind: int) -> None:
        codec = self.ctx.codec
        if self.references is None:
            sequence = self._sent_sequence[peer]
            self._sent_sequence[peer] += 1
            buffer, values = codec.pack(flat, sequence, kind)
        else:
            sequence = self.references.sent_sequence[peer]
            buffer, values = codec.pack(self.references.delta_to(peer, flat), sequence, kind)
            own = codec.unpack(buffer, self.ctx.rank, sequence, out=self._decoded)
            self.references.commit_sent(peer, own.to(flat.device))
        self._sending.append(self._exchange.post(peer, buffer, values))

    def _receive(self, source: int, buffer: np.ndarray, kind: int, device: torch.device) -> torch.Tensor:
        """Decode a packet from ``source``; return this rank's copy of the sender's model."""
        codec = self.ctx.codec
        if self.references is None:
            sequence = self._received_sequence[source]
            self._received_sequence[source] += 1
            return codec.unpack(buffer, source, sequence, out=self._decoded, kind=kind).to(device)
        sequence = self.references.received_sequence[source]
        theirs = codec.unpack(buffer, source, sequence, out=self._decoded, kind=kind)
        self.references.commit_received(source, theirs.to(device))
        return self.references.received[source]

    def _handle(self, source: int, buffer: np.ndarray, flat: torch.Tensor) -> None:
        if source not in self._sent_sequence:
            raise WireError(f"rank {source} is not a neighbour of rank {self.ctx.rank} but sent it a packet")
        kind = packet_kind(buffer)
        if kind == OFFER:
            theirs = self._receive(source, buffer, OFFER, flat.device)
            self._send(source, flat, REPLY)  # the pre-averaging model, before flat changes
            flat.add_(theirs).mul_(0.5)
            self.stats.offers_served += 1
        elif kind == REPLY:
            pending = self._pending
            if pending is None or pending.partner != source:
                raise WireError(f"rank {source} replied to an offer rank {self.ctx.rank} did not make")
            theirs = self._receive(source, buffer, REPLY, flat.device)
            flat.add_(theirs - pending.seen, alpha=0.5)
            self.stats.interactions += 1
            self.stats.staleness_steps += self.steps - pending.steps_at_offer
            self._pending = None
        else:
            raise WireError(f"malformed packet from rank {source}: kind {kind} is neither offer nor reply")
