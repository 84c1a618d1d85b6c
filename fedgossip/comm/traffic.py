"""Count every byte a rank puts on the wire, per peer, and the time it spends in MPI calls."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from fedgossip.compress.wire import HEADER_SIZE

__all__ = ["Traffic"]

_ARRAYS = ("bytes_sent", "bytes_received", "data_bytes_sent", "data_bytes_received")
_COUNTS = ("collective_bytes", "messages_sent", "fp32_bytes_sent")
_SECONDS = ("comm_seconds", "link_seconds")


class Traffic:
    """Byte and time accounting of one rank.

    Bytes are counted as the sizes of the buffers handed to MPI, header
    included, so the totals are exactly what this rank posted.
    ``fp32_bytes_sent`` is what the same messages would have cost as plain
    float32 packets: the reference the compression ratio is measured against.
    """

    def __init__(self, world_size: int):
        self.bytes_sent = np.zeros(world_size, dtype=np.int64)  # per destination rank
        self.bytes_received = np.zeros(world_size, dtype=np.int64)  # per source rank
        # Sent (and as much received) through collectives (Allreduce), which have no single peer.
        self.collective_bytes = 0
        self.messages_sent = 0
        self.fp32_bytes_sent = 0
        # Samples shared by --share-data: the same wire, counted apart from the model traffic.
        self.data_bytes_sent = np.zeros(world_size, dtype=np.int64)
        self.data_bytes_received = np.zeros(world_size, dtype=np.int64)
        self.comm_seconds = 0.0  # wall time inside MPI calls (waiting included)
        self.link_seconds = 0.0  # wall time spent holding messages for an emulated --link

    def record_send(self, peer: int, nbytes: int, values: int) -> None:
        """Count a message of ``nbytes`` carrying ``values`` float32 values to ``peer``."""
        self.bytes_sent[peer] += nbytes
        self.messages_sent += 1
        self.fp32_bytes_sent += HEADER_SIZE + 4 * values

    def record_collective(self, nbytes: int, values: int) -> None:
        """Count ``nbytes`` (``values`` float32 values) this rank sends, and receives, inside a collective."""
        self.collective_bytes += nbytes
        self.messages_sent += 1
        self.fp32_bytes_sent += 4 * values

    def record_receive(self, peer: int, nbytes: int) -> None:
        self.bytes_received[peer] += nbytes

    def record_data_send(self, peer: int, nbytes: int) -> None:
        """Count a message of ``nbytes`` carrying samples (not model values) to ``peer``."""
        self.data_bytes_sent[peer] += nbytes
        self.messages_sent += 1

    def record_data_receive(self, peer: int, nbytes: int) -> None:
        self.data_bytes_received[peer] += nbytes

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
            "bytes_sent": float(self.bytes_sent.sum() + self.collective_bytes),
            "bytes_received": float(self.bytes_received.sum() + self.collective_bytes),
            "fp32_bytes_sent": float(self.fp32_bytes_sent),
            "data_bytes_sent": float(self.data_bytes_sent.sum()),
            "data_bytes_received": float(self.data_bytes_received.sum()),
            "comm_s": self.comm_seconds,
            "link_s": self.link_seconds,
        }

    def state_dict(self) -> dict[str, Any]:
        """Return every counter, so a resumed run's totals go on from the checkpoint's, not from zero."""
        state: dict[str, Any] = {name: getattr(self, name).copy() for name in _ARRAYS}
        state.update({name: int(getattr(self, name)) for name in _COUNTS})
        state.update({name: float(getattr(self, name)) for name in _SECONDS})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the counters of :meth:`state_dict`, saved by the same rank of a run of as many ranks."""
        expected = {*_ARRAYS, *_COUNTS, *_SECONDS}
        if set(state) != expected:
            raise ValueError(f"traffic state has keys {sorted(state)}, expected {sorted(expected)}")
        size = len(self.bytes_sent)
        wrong = [f"{name} has {len(state[name])}" for name in _ARRAYS if len(state[name]) != size]
        if wrong:
            raise ValueError(
                f"traffic state does not fit a run of {size} ranks: {', '.join(wrong)} entries; "
                "resume with as many ranks as the checkpoint"
            )
        for name in _ARRAYS:
            setattr(self, name, np.array(state[name], dtype=np.int64))
        for name in _COUNTS:
            setattr(self, name, int(state[name]))
        for name in _SECONDS:
            setattr(self, name, float(state[name]))
