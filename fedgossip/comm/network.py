"""The network between nodes: packets handed over in memory between co-hosted nodes, by MPI otherwise.

A rank hosts several nodes (:class:`~fedgossip.comm.placement.Placement`). Each
stage of a round, every local node asks for one request of the same kind
(:mod:`fedgossip.comm.conversation`); :meth:`NodeNetwork.converse` posts all of
the rank's sends first — a packet for a co-hosted node goes into a mailbox, one for
a node elsewhere is an ``Isend`` — then collects what every local node expects.
A packet between co-hosted nodes is the same framed buffer, counted the same way,
and goes through the same checks on arrival: only MPI is skipped.

Remote packets travel on the network's own communicator, tagged with the
recipient's position on its rank; MPI keeps the order of one source and tag, so
stage k's packets are matched before stage k+1's. The recipient learns the
sending node from the packet header and checks it was expected. Data messages
(:class:`~fedgossip.comm.conversation.DataExchange`, e.g. shared samples) take the
same path, counted as data bytes and bounded by their own size limit; they carry
no delivery stamp, so ``--link`` does not hold them.
"""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np
from mpi4py import MPI

from fedgossip.comm.conversation import Allgather, Allreduce, Conversation, DataExchange, Exchange, Request
from fedgossip.comm.link import Uplink, hold_until
from fedgossip.comm.placement import Placement
from fedgossip.comm.traffic import Traffic
from fedgossip.comm.ulfm import abandon
from fedgossip.compress.wire import delivery_time, packet_sender, stamp_delivery
from fedgossip.errors import WireError
from fedgossip.settings.link_spec import Link

__all__ = ["NodeNetwork", "Endpoint"]


class Endpoint:
    """One local node's side of the network: its counters and its emulated uplink."""

    def __init__(self, node: int, traffic: Traffic, link: Link | None):
        self.node = node
        self.traffic = traffic
        self.uplink = Uplink(link) if link is not None else None


class NodeNetwork:
    """Answer the requests of this rank's nodes, stage by stage."""

    def __init__(self, comm: MPI.Intracomm, placement: Placement, max_bytes: int, link: Link | None = None):
        self._parent = comm
        self._comm: MPI.Intracomm | None = None  # its own tags, apart from every other message of the run
        self.placement = placement
        self.rank = comm.Get_rank()
        self.max_bytes = max_bytes  # largest packet a peer may send: bounds what a bad peer makes us allocate
        self.link = link
        self.endpoints: dict[int, Endpoint] = {}

    def attach(self, node: int, traffic: Traffic) -> Endpoint:
        """Register local ``node`` with the counters its messages are charged to."""
        endpoint = self.endpoints[node] = Endpoint(node, traffic, self.link)
        return endpoint

    @property
    def comm(self) -> MPI.Intracomm:
        return self._comm

    @property
    def parent(self) -> MPI.Intracomm:
        """Return the rank's communicator the network's own was duplicated from."""
        return self._parent

    def converse(self, conversations: dict[int, Conversation]) -> None:
        """Run every local node's conversation to its end, answering one stage of requests at a time.

        Every rank calls it alike (once per round), even with nothing to say: the first
        call duplicates the communicator, a collective, outside the set-up that must
        not communicate (``agree``).
        """
        if self._comm is None:
            self._comm = self.duplicate()
        asked: dict[int, Request] = {}
        for node, conversation in conversations.items():
            request = next(conversation, None)
            if request is not None:
                asked[node] = request
        while asked:
            answers = self._answer(asked)
            following = {}
            for node, answer in answers.items():
                try:
                    following[node] = conversations[node].send(answer)
                except StopIteration:
                    continue  # this node's part of the round is over
            asked = following

    def duplicate(self) -> MPI.Intracomm:
        """Return a communicator of the network's own (collective), checked to have a tag per local node.

        Packets are tagged with the recipient's position on its rank; the asynchronous
        transport opens its own the same way.
        """
        comm = self._parent.Dup()
        limit = comm.Get_attr(MPI.TAG_UB)
        hosted = len(self.placement.nodes_of(self.rank))
        if limit is not None and hosted > limit:
            comm.Free()
            raise ValueError(f"{hosted} nodes on one rank exceed this MPI's {limit} message tags")
        return comm

    def free(self) -> None:
        if self._comm is not None:
            self._comm.Free()
            self._comm = None

    def _answer(self, asked: dict[int, Request]) -> dict[int, object]:
        kinds = {type(request) for request in asked.values()}
        if len(kinds) != 1:
            names = ", ".join(sorted(kind.__name__ for kind in kinds))
            raise RuntimeError(f"the nodes of rank {self.rank} asked for {names} in one stage")
        kind = kinds.pop()
        started = time.perf_counter()
        if kind is Exchange or kind is DataExchange:
            answers = self._exchange(asked)
        elif kind is Allreduce:
            answers = self._allreduce(asked)
        else:
            answers = self._allgather(asked)
        share = (time.perf_counter() - started) / len(asked)  # the rank's time, split among its nodes
        for node in asked:
            self.endpoints[node].traffic.comm_seconds += share
        return answers

    def _exchange(self, asked: dict[int, Exchange | DataExchange]) -> dict[int, dict[int, np.ndarray]]:
        pending: list[tuple[MPI.Request, np.ndarray]] = []
        try:
            return self._post_and_collect(asked, pending)
        except MPI.Exception:
            abandon(pending)  # a lost peer (ULFM): sends MPI still holds must outlive this error
            raise

    def _post_and_collect(
        self, asked: dict[int, Exchange | DataExchange], pending: list[tuple[MPI.Request, np.ndarray]]
    ) -> dict[int, dict[int, np.ndarray]]:
        mailbox: dict[tuple[int, int], np.ndarray] = {}  # (sender, recipient) -> packet, co-hosted only
        for node, request in asked.items():
            if isinstance(request, DataExchange):
                for peer, message in request.outgoing.items():
                    self._post_data(node, peer, message, mailbox, pending)
            else:
                for peer, (buffer, values) in request.outgoing.items():
                    self._post(node, peer, buffer, values, mailbox, pending)
        received: dict[int, dict[int, np.ndarray]] = {}
        latest = 0.0
        for node, request in asked.items():
            got = received[node] = self._collect(node, list(request.incoming), mailbox, request)
            if self.link is not None and got and isinstance(request, Exchange):
                latest = max(latest, *(delivery_time(buffer) for buffer in got.values()))
        MPI.Request.Waitall([request for request, _ in pending])
        if latest:
            held = hold_until(self.delivery_deadline(latest))
            for node in asked:
                self.endpoints[node].traffic.link_seconds += held
        return received

    def _post(self, node, peer, buffer, values, mailbox, pending) -> None:
        endpoint = self.endpoints[node]
        if endpoint.uplink is not None:  # every recipient gets its own copy, stamped with its own delivery
            buffer = buffer.copy()
            stamp_delivery(buffer, endpoint.uplink.transmit(time.time(), buffer.size))
        host = self.placement.rank_of(peer)
        endpoint.traffic.record_send(peer, buffer.size, values, within=host == self.rank)
        self._hand_over(node, peer, buffer, mailbox, pending)

    def _post_data(self, node, peer, message, mailbox, pending) -> None:
        self.endpoints[node].traffic.record_data_send(peer, message.size)
        self._hand_over(node, peer, message, mailbox, pending)

    def _hand_over(self, node, peer, buffer, mailbox, pending) -> None:
        """Put ``buffer`` into the mailbox for a co-hosted ``peer``, or start sending it to peer's rank."""
        host = self.placement.rank_of(peer)
        if host == self.rank:
            mailbox[(node, peer)] = buffer
        else:
            tag = self.placement.index_on_rank(peer)
            pending.append((self.comm.Isend([buffer, MPI.BYTE], dest=host, tag=tag), buffer))

    def _collect(
        self, node: int, senders: list[int], mailbox, request: Exchange | DataExchange
    ) -> dict[int, np.ndarray]:
        """Return the packets ``node`` expects from ``senders``: from the mailbox, or received by MPI."""
        traffic = self.endpoints[node].traffic
        if isinstance(request, DataExchange):
            record_receive, max_bytes = traffic.record_data_receive, request.max_bytes
            sender_of = request.sender_of
        else:
            record_receive, max_bytes, sender_of = traffic.record_receive, self.max_bytes, packet_sender
        got: dict[int, np.ndarray] = {}
        remote: dict[int, set[int]] = defaultdict(set)
        for sender in senders:
            host = self.placement.rank_of(sender)
            if host == self.rank:
                buffer = mailbox.pop((sender, node), None)
                if buffer is None:
                    raise RuntimeError(f"node {sender} sent node {node} nothing in the stage it was expected")
                got[sender] = buffer
                record_receive(sender, buffer.size)
            else:
                remote[host].add(sender)
        tag = self.placement.index_on_rank(node)
        for host, expected in sorted(remote.items()):
            for _ in range(len(expected)):
                buffer = self._receive(host, tag, max_bytes)
                sender = sender_of(buffer)
                if sender not in expected:
                    raise WireError(
                        f"rank {host} sent node {node} a packet from node {sender}, which it does not expect"
                    )
                expected.discard(sender)
                got[sender] = buffer
                record_receive(sender, buffer.size)
        # in the order asked for, whoever arrived first: what a node adds up must not depend on placement
        return {sender: got[sender] for sender in senders}

    def _receive(self, host: int, tag: int, max_bytes: int) -> np.ndarray:
        status = MPI.Status()
        message = self.comm.Mprobe(source=host, tag=tag, status=status)
        size = status.Get_count(MPI.BYTE)
        if size > max_bytes:
            raise WireError(f"rank {host} sent a {size}-byte packet; at most {max_bytes} were expected")
        buffer = np.empty(size, dtype=np.uint8)
        message.Recv([buffer, MPI.BYTE])
        return buffer

    def delivery_deadline(self, stamped: float) -> float:
        """Return when a packet stamped ``stamped`` counts as delivered, capped for a lying sender.

        A peer's queue may legitimately hold one packet for every node before
        ours; a later stamp is a bad clock or a bad peer, and must not hang us.
        """
        link = self.link
        cap = time.time() + link.latency_s + self.placement.nodes * link.transmission(self.max_bytes)
        return min(stamped, cap)

    def _allreduce(self, asked: dict[int, Allreduce]) -> dict[int, np.ndarray]:
        # Summed in float64 — the local nodes in order, then across ranks — and rounded once to float32:
        # the sum of float32 values is then the same, almost always to the bit, however nodes are placed.
        total = np.zeros(next(iter(asked.values())).vector.size, dtype=np.float64)
        for node in sorted(asked):
            total += asked[node].vector
        started = time.time()
        self.comm.Allreduce(MPI.IN_PLACE, total, op=MPI.SUM)
        nodes = self.placement.nodes
        if self.link is not None:
            seconds = self.link.allreduce_time(4 * total.size, nodes)
            held = hold_until(started + seconds)
            for node in asked:
                self.endpoints[node].traffic.link_seconds += held
        # A collective has no single destination: count what a bandwidth-optimal (ring) allreduce
        # sends from each node, 2·(n−1)/n of the buffer (reduce-scatter, then allgather).
        moved = 2 * (nodes - 1) * total.size // nodes
        for node in asked:
            self.endpoints[node].traffic.record_collective(4 * moved, moved)
        result = total.astype(np.float32)
        return dict.fromkeys(asked, result)

    def _allgather(self, asked: dict[int, Allgather]) -> dict[int, np.ndarray]:
        size = next(iter(asked.values())).packet.size
        mine = self.placement.nodes_of(self.rank)
        if sorted(asked) != list(mine):
            raise RuntimeError(f"an allgather needs every node of rank {self.rank}, not only {sorted(asked)}")
        local = np.stack([asked[node].packet for node in mine]) if mine else np.empty((0, size), np.uint8)
        gathered = np.empty((self.placement.nodes, size), dtype=np.uint8)
        counts = [size * len(self.placement.nodes_of(rank)) for rank in range(self.placement.ranks)]
        displacements = [size * self.placement.first(rank) for rank in range(self.placement.ranks)]
        started = time.time()
        self.comm.Allgatherv([local, MPI.BYTE], [gathered, (counts, displacements), MPI.BYTE])
        if self.link is not None:
            held = hold_until(started + self.link.allgather_time(size, self.placement.nodes))
            for node in asked:
                self.endpoints[node].traffic.link_seconds += held
        return dict.fromkeys(asked, gathered)
