"""Count every byte a node puts on the wire and the time it spends communicating."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from fedgossip.compress.wire import HEADER_SIZE

__all__ = ["Traffic"]

_TOTALS = ("bytes_sent", "bytes_received", "data_bytes_sent", "data_bytes_received")
_COUNTS = ("collective_bytes", "messages_sent", "fp32_bytes_sent", "bytes_within")
_SECONDS = ("comm_seconds", "link_seconds")
_PER_PEER = ("sent_to_peer", "sent_to_bytes")


class Traffic:
    """Byte and time accounting of one node.

    Bytes are counted as the sizes of the framed buffers sent, header included,
    so the totals are exactly what this node posted, whether the packet went
    through MPI or, to a co-hosted node, through memory (``bytes_within``).
    ``fp32_bytes_sent`` is what the same messages would have cost as plain
    float32 packets: the reference the compression ratio is measured against.
    ``sent_to`` holds the model bytes sent to each peer node this node has ever
    sent to, so it grows with the node's neighbours (a ring: 2), not with the
    run's size. Bytes moved inside a collective have no single peer and are not in it.
    """

    def __init__(self) -> None:
        self.bytes_sent = 0
        self.bytes_received = 0
        self.bytes_within = 0  # the part of bytes_sent that went to a node of the same process
        # Sent (and as much received) through collectives (Allreduce), which have no single peer.
        self.collective_bytes = 0
        self.messages_sent = 0
        self.fp32_bytes_sent = 0
        # Samples shared by --share-data: the same wire, counted apart from the model traffic.
        self.data_bytes_sent = 0
        self.data_bytes_received = 0
        self.comm_seconds = 0.0  # wall time communicating (waiting included)
        self.link_seconds = 0.0  # wall time spent holding messages for an emulated --link
        self.sent_to: dict[int, int] = {}  # peer node -> model bytes sent to it (a sparse row of the matrix)

    def record_send(self, peer: int, nbytes: int, values: int, within: bool = False) -> None:
        """Count a message of ``nbytes`` carrying ``values`` float32 values to ``peer``.

        ``within``: the peer is a node of the same process (the message went through memory).
        """
        self.bytes_sent += nbytes
        self.sent_to[int(peer)] = self.sent_to.get(int(peer), 0) + nbytes
        if within:
            self.bytes_within += nbytes
        self.messages_sent += 1
        self.fp32_bytes_sent += HEADER_SIZE + 4 * values

    def record_collective(self, nbytes: int, values: int) -> None:
        """Count ``nbytes`` (``values`` float32 values) this rank sends, and receives, inside a collective."""
        self.collective_bytes += nbytes
        self.messages_sent += 1
        self.fp32_bytes_sent += 4 * values

    def record_receive(self, peer: int, nbytes: int) -> None:
        self.bytes_received += nbytes

    def record_data_send(self, peer: int, nbytes: int) -> None:
        """Count a message of ``nbytes`` carrying samples (not model values) to ``peer``."""
        self.data_bytes_sent += nbytes
        self.messages_sent += 1

    def record_data_receive(self, peer: int, nbytes: int) -> None:
        self.data_bytes_received += nbytes

    @contextmanager
    def timed(self) -> Iterator[None]:
        """Add the wall time of the block to ``comm_seconds``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.comm_seconds += time.perf_counter() - start

    def totals(self) -> dict[str, float]:
        """Return the cumulative totals the metrics record."""
        return {
            "bytes_sent": float(self.bytes_sent + self.collective_bytes),
            "bytes_received": float(self.bytes_received + self.collective_bytes),
            "bytes_within": float(self.bytes_within),
            "fp32_bytes_sent": float(self.fp32_bytes_sent),
            "data_bytes_sent": float(self.data_bytes_sent),
            "data_bytes_received": float(self.data_bytes_received),
            "comm_s": self.comm_seconds,
            "link_s": self.link_seconds,
        }

    def state_dict(self) -> dict[str, Any]:
        """Return every counter, so a resumed run's totals go on from the checkpoint's, not from zero."""
        state: dict[str, Any] = {name: int(getattr(self, name)) for name in (*_TOTALS, *_COUNTS)}
        state.update({name: float(getattr(self, name)) for name in _SECONDS})
        peers = sorted(self.sent_to)
        # Two int64 arrays, not a dict: checkpoints hold arrays, and a peer id is not a key name.
        state["sent_to_peer"] = np.asarray(peers, dtype=np.int64)
        state["sent_to_bytes"] = np.asarray([self.sent_to[p] for p in peers], dtype=np.int64)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the counters of :meth:`state_dict`.

        A checkpoint written before nodes shared processes holds per-rank arrays for
        the totals and no ``bytes_within``: the arrays are summed, and nothing stayed
        within a process then.
        """
        expected = {*_TOTALS, *_COUNTS, *_SECONDS, *_PER_PEER}
        # Older checkpoints: no bytes_within (nodes did not share processes), no per-peer counts.
        given = set(state) | {"bytes_within", *_PER_PEER}
        if given != expected:
            raise ValueError(f"traffic state has keys {sorted(state)}, expected {sorted(expected)}")
        for name in _TOTALS:
            setattr(self, name, int(np.sum(state[name])))
        for name in _COUNTS:
            setattr(self, name, int(state.get(name, 0)))
        for name in _SECONDS:
            setattr(self, name, float(state[name]))
        peers = np.asarray(state.get("sent_to_peer", ()), dtype=np.int64).reshape(-1)
        sent = np.asarray(state.get("sent_to_bytes", ()), dtype=np.int64).reshape(-1)
        if peers.shape != sent.shape:
            raise ValueError(f"traffic state has {peers.size} peers but {sent.size} per-peer byte counts")
        self.sent_to = {int(p): int(b) for p, b in zip(peers, sent, strict=True)}
