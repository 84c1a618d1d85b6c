"""One round of point-to-point packet exchange with some peers, never pickled, never deadlocking."""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np
from mpi4py import MPI

from fedgossip.comm.link import Uplink, hold_until
from fedgossip.comm.traffic import Traffic
from fedgossip.compress.wire import delivery_time, stamp_delivery
from fedgossip.errors import WireError

__all__ = ["GOSSIP_TAG", "PeerExchange"]

GOSSIP_TAG = 17  # one tag for every gossip payload: MPI keeps per-pair order within a tag


class PeerExchange:
    """Send uint8 buffers to peers and receive theirs in one nonblocking round.

    All sends are posted first (``Isend``), then each expected message is
    received with a matched probe, which learns its size before allocating;
    so variable-size packets (top-k, ...) need no size handshake, and the
    order of peers cannot deadlock.
    """

    def __init__(
        self,
        comm: MPI.Intracomm,
        traffic: Traffic,
        max_bytes: int,
        tag: int = GOSSIP_TAG,
        uplink: Uplink | None = None,
    ):
        self.comm = comm
        self.traffic = traffic
        self.max_bytes = max_bytes  # largest packet a peer may send: bounds what a bad peer makes us allocate
        self.tag = tag
        self.uplink = uplink  # --link: stamp each packet with its emulated delivery time, hold until then

    def exchange(
        self, outgoing: dict[int, tuple[np.ndarray, int]], incoming: Iterable[int]
    ) -> dict[int, np.ndarray]:
        """Send ``outgoing[peer] = (buffer, values)`` and return the buffers received from ``incoming``."""
        with self.traffic.timed():
            posted = [self.post(peer, buffer, values) for peer, (buffer, values) in outgoing.items()]
            received = {peer: self.receive(peer) for peer in incoming}
            MPI.Request.Waitall([request for request, _ in posted])
            if self.uplink is not None and received:
                latest = max(delivery_time(buffer) for buffer in received.values())
                self.traffic.link_seconds += hold_until(self.delivery_deadline(latest))
        return received

    def post(self, peer: int, buffer: np.ndarray, values: int) -> tuple[MPI.Request, np.ndarray]:
        """Start sending ``buffer`` (carrying ``values`` floats) to ``peer``.

        Returns the request and the buffer actually sent, which the caller must
        keep alive until the request completes: with a link, every peer gets its
        own copy, stamped with its own delivery time (one packet often goes to
        several peers, and a buffer must not change while a send is pending).
        """
        if self.uplink is not None:
            buffer = buffer.copy()
            stamp_delivery(buffer, self.uplink.transmit(time.time(), buffer.size))
        self.traffic.record_send(peer, buffer.size, values)
        return self.comm.Isend([buffer, MPI.BYTE], dest=peer, tag=self.tag), buffer

    def delivery_deadline(self, stamped: float) -> float:
        """Return when a packet stamped ``stamped`` counts as delivered, capped for a lying sender.

        A peer's queue may legitimately hold one packet for every rank before
        ours; a later stamp is a bad clock or a bad peer, and must not hang us.
        """
        link = self.uplink.link
        cap = time.time() + link.latency_s + self.comm.Get_size() * link.transmission(self.max_bytes)
        return min(stamped, cap)

    def receive(self, peer: int) -> np.ndarray:
        """Wait for the next packet from ``peer`` and return it (any size up to ``max_bytes``)."""
        status = MPI.Status()
        message = self.comm.Mprobe(source=peer, tag=self.tag, status=status)
        return self._take(message, status)

    def receive_any(self) -> tuple[int, np.ndarray] | None:
        """Return ``(source, packet)`` of a packet that has arrived from anyone, or None; never waits."""
        status = MPI.Status()
        message = self.comm.Improbe(source=MPI.ANY_SOURCE, tag=self.tag, status=status)
        if message is None:
            return None
        return status.Get_source(), self._take(message, status)

    def _take(self, message: MPI.Message, status: MPI.Status) -> np.ndarray:
        peer = status.Get_source()
        size = status.Get_count(MPI.BYTE)
        if size > self.max_bytes:
            raise WireError(f"rank {peer} sent a {size}-byte packet; at most {self.max_bytes} were expected")
        buffer = np.empty(size, dtype=np.uint8)
        message.Recv([buffer, MPI.BYTE])
        self.traffic.record_receive(peer, size)
        return buffer
