"""One round of point-to-point packet exchange with some peers, never pickled, never deadlocking."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from mpi4py import MPI

from fedgossip.comm.traffic import Traffic
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

    def __init__(self, comm: MPI.Intracomm, traffic: Traffic, max_bytes: int, tag: int = GOSSIP_TAG):
        self.comm = comm
        self.traffic = traffic
        self.max_bytes = max_bytes  # largest packet a peer may send: bounds what a bad peer makes us allocate
        self.tag = tag

    def exchange(
        self, outgoing: dict[int, tuple[np.ndarray, int]], incoming: Iterable[int]
    ) -> dict[int, np.ndarray]:
        """Send ``outgoing[peer] = (buffer, values)`` and return the buffers received from ``incoming``."""
        with self.traffic.timed():
            requests = []
            for peer, (buffer, values) in outgoing.items():
                requests.append(self.comm.Isend([buffer, MPI.BYTE], dest=peer, tag=self.tag))
                self.traffic.record_send(peer, buffer.size, values)
            received = {peer: self._receive(peer) for peer in incoming}
            MPI.Request.Waitall(requests)
        return received

    def _receive(self, peer: int) -> np.ndarray:
        status = MPI.Status()
        message = self.comm.Mprobe(source=peer, tag=self.tag, status=status)
        size = status.Get_count(MPI.BYTE)
        if size > self.max_bytes:
            raise WireError(f"rank {peer} sent a {size}-byte packet; at most {self.max_bytes} were expected")
        buffer = np.empty(size, dtype=np.uint8)
        message.Recv([buffer, MPI.BYTE])
        self.traffic.record_receive(peer, size)
        return buffer
