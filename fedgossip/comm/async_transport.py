"""The asynchronous transport of one rank: its nodes' packets, to each other in memory, to others by MPI.

Asynchronous gossip (``--async``) has no stages to answer: a node sends whenever
its protocol says so, and its rank polls between local steps. One transport per
rank carries the packets of all its nodes:

- a packet for a co-hosted node goes into that node's in-memory inbox; one for a
  node elsewhere is an ``Isend`` on the transport's own communicator, tagged with
  the recipient's position on its rank (as :class:`~fedgossip.comm.network.NodeNetwork`
  tags). Either way it is the same framed buffer, counted the same way at both ends
  (``bytes_within`` for the co-hosted), and the recipient's protocol checks it alike;
- :meth:`AsyncTransport.poll` takes in whatever has arrived (a matched probe for any
  source and tag), then hands each delivered packet to its recipient's handler,
  per sender in the order sent: MPI keeps the order of one source rank and tag, the
  inboxes keep theirs, and per-edge references and sequence numbers depend on it.
  A poll serves *every* node of the rank, so a node waiting for a co-hosted
  partner's reply lets that partner answer (the rank busy-waiting on one node while
  the answer had to come from another of its nodes would be a deadlock);
- with ``--link``, each packet carries the delivery time its sender's uplink gave
  it and waits in the recipient's inbox until then, co-hosted or not;
- a node marked :attr:`~AsyncTransport.away` (``--availability``: offline in its
  interaction window) is served by no poll: its packets wait in its inbox, in
  order, until it is back;
- :meth:`AsyncTransport.finish` is the termination barrier (an ``Ibarrier``),
  entered once the rank's own nodes need nothing more, serving until every rank
  has entered it.

The protocol on top (offers, replies) is the handlers' business: the transport
only knows senders, recipients and buffers.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Collection

import numpy as np
from mpi4py import MPI

from fedgossip.comm.network import NodeNetwork
from fedgossip.compress.wire import delivery_time, packet_sender, stamp_delivery
from fedgossip.errors import FedGossipError, WireError

__all__ = ["AsyncTransport", "Handler"]

Handler = Callable[[int, np.ndarray], None]
"""What a node does with a delivered packet: ``handler(sender node, buffer)``."""


class AsyncTransport:
    """Carry the packets of one rank's nodes without ever waiting; polled between local steps."""

    def __init__(self, network: NodeNetwork):
        self._network = network  # the nodes' endpoints: their counters and emulated uplinks
        self.placement = network.placement
        self.rank = network.rank
        self._hosted = self.placement.nodes_of(self.rank)
        self._comm: MPI.Intracomm | None = None  # its own, opened by every rank alike (open)
        self._handlers: dict[int, Handler] = {}
        # recipient -> sender -> [(deliver at, buffer)] in the order sent; per sender, since with
        # --link one sender's packet may wait while another's is due
        self._inbox: dict[int, dict[int, deque[tuple[float, np.ndarray]]]] = {}
        self._queued: dict[int, None] = {}  # recipients with something in their inbox, in arrival order
        self._sending: list[tuple[MPI.Request, np.ndarray]] = []  # a buffer lives until its Isend completes
        # local nodes offline now (--availability): no poll hands them anything until they are back
        self.away: set[int] = set()

    def attach(self, node: int, handler: Handler) -> None:
        """Deliver the packets for local ``node`` to ``handler``."""
        if node not in self._hosted:
            raise ValueError(f"node {node} is not hosted by rank {self.rank}")
        if node in self._handlers:
            raise ValueError(f"node {node} is already attached to the transport")
        self._handlers[node] = handler
        self._inbox[node] = {}

    def open(self) -> None:
        """Duplicate the rank's communicator: collective, every rank calls it before its first message.

        Not at construction: nodes are built inside ``agree``, which must not communicate.
        """
        if self._comm is not None:
            return
        self._comm = self._network.duplicate()  # apart from the synchronous network's messages

    def free(self) -> None:
        """Free the communicator (collective), once :meth:`finish` has left nothing in flight."""
        if self._comm is not None:
            self._comm.Free()
            self._comm = None

    @property
    def opened(self) -> MPI.Intracomm | None:
        """Return its communicator once open (None before): what a lost rank's recovery revokes."""
        return self._comm

    @property
    def comm(self) -> MPI.Intracomm:
        if self._comm is None:
            raise RuntimeError("the asynchronous transport is not open; every rank must call open() first")
        return self._comm

    def send(self, sender: int, recipient: int, buffer: np.ndarray, values: int) -> None:
        """Send ``buffer`` (``values`` floats) from local node ``sender`` to ``recipient``; never waits."""
        endpoint = self._network.endpoints[sender]
        if endpoint.uplink is not None:  # its own copy: a buffer must not change while a send is pending
            buffer = buffer.copy()
            stamp_delivery(buffer, endpoint.uplink.transmit(time.time(), buffer.size))
        host = self.placement.rank_of(recipient)
        endpoint.traffic.record_send(recipient, buffer.size, values, within=host == self.rank)
        if host == self.rank:
            self._arrive(recipient, sender, buffer)
        else:
            tag = self.placement.index_on_rank(recipient)
            self._sending.append((self.comm.Isend([buffer, MPI.BYTE], dest=host, tag=tag), buffer))

    def poll(self, closed: Collection[int] = ()) -> None:
        """Take in what has arrived and hand each delivered packet to its recipient; never waits.

        Packets for the nodes in ``closed`` (a node whose burst of local steps must not
        be disturbed) and for the nodes :attr:`away` stay in their inboxes, in order,
        until a later poll.
        """
        held = self.away.union(closed) if closed else self.away
        self._take_in()
        handled = True
        while handled:  # a co-hosted offer answered in this poll puts its reply in an inbox already visited
            handled = False
            now = time.time()
            for recipient in list(self._queued):
                if recipient not in held:
                    handled |= self._deliver(recipient, now)
        self._sending = [(request, buffer) for request, buffer in self._sending if not request.Test()]

    def idle(self) -> None:
        """Wait a moment for something to arrive: let another process on this core compute."""
        os.sched_yield()

    def finish(self, between_polls: Callable[[], None] | None = None) -> float:
        """Enter the termination barrier and serve until every rank has entered it; return the seconds.

        The caller enters only once its own nodes wait for nothing (every offer
        answered). Once every rank has entered, nothing is in flight anywhere.
        ``between_polls`` runs while waiting (other non-blocking work).
        """
        if self.away:
            raise RuntimeError(f"nodes {sorted(self.away)} are away: bring them back before the barrier")
        start = time.perf_counter()
        barrier = self.comm.Ibarrier()
        while not barrier.Test():
            self.poll()
            if between_polls is not None:
                between_polls()
            self.idle()
        if self._queued:
            raise FedGossipError(
                f"rank {self.rank} still held packets for nodes {sorted(self._queued)} after every rank "
                "had finished"
            )
        MPI.Request.Waitall([request for request, _ in self._sending])
        self._sending = []
        return time.perf_counter() - start

    def quiet(self, node: int) -> bool:
        """Return whether nothing is in flight for ``node`` nor leaving this rank."""
        return node not in self._queued and not self._sending

    def _take_in(self) -> None:
        """Receive every message that has arrived by MPI into its recipient's inbox."""
        comm, status = self.comm, MPI.Status()
        while (message := comm.Improbe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status)) is not None:
            started = time.perf_counter()
            host, tag, size = status.Get_source(), status.Get_tag(), status.Get_count(MPI.BYTE)
            max_bytes = self._network.max_bytes
            if size > max_bytes:
                raise WireError(f"rank {host} sent a {size}-byte packet; at most {max_bytes} were expected")
            buffer = np.empty(size, dtype=np.uint8)
            message.Recv([buffer, MPI.BYTE])
            if not 0 <= tag < len(self._hosted):
                raise WireError(
                    f"rank {host} sent a packet to position {tag} of rank {self.rank}, "
                    f"which hosts {len(self._hosted)} nodes"
                )
            sender = packet_sender(buffer)
            if not 0 <= sender < self.placement.nodes or self.placement.rank_of(sender) != host:
                raise WireError(f"rank {host} sent a packet in the name of node {sender}, not one of its own")
            recipient = self._hosted[tag]
            self._arrive(recipient, sender, buffer)
            self._network.endpoints[recipient].traffic.comm_seconds += time.perf_counter() - started

    def _arrive(self, recipient: int, sender: int, buffer: np.ndarray) -> None:
        """Count ``buffer`` as received by ``recipient`` and queue it until its (emulated) delivery."""
        inbox = self._inbox.get(recipient)
        if inbox is None:
            raise RuntimeError(f"node {recipient} of rank {self.rank} was sent a packet but takes none")
        traffic = self._network.endpoints[recipient].traffic
        traffic.record_receive(sender, buffer.size)
        now = time.time()
        deliver_at = now
        if self._network.link is not None:
            deliver_at = max(now, self._network.delivery_deadline(delivery_time(buffer)))
            traffic.link_seconds += deliver_at - now  # the emulated link holds it this much longer
        inbox.setdefault(sender, deque()).append((deliver_at, buffer))
        self._queued[recipient] = None

    def _deliver(self, recipient: int, now: float) -> bool:
        """Hand ``recipient`` its packets that are due, per sender in order; return whether any was."""
        handler, traffic = self._handlers[recipient], self._network.endpoints[recipient].traffic
        inbox = self._inbox[recipient]
        handled = False
        for sender, queue in list(inbox.items()):
            while queue and queue[0][0] <= now:
                started = time.perf_counter()
                handler(sender, queue.popleft()[1])
                traffic.comm_seconds += time.perf_counter() - started
                handled = True
            if not queue:
                del inbox[sender]
        if not inbox:
            self._queued.pop(recipient, None)
        return handled
