"""Encode a vector into a framed packet and back: the compressor plus the wire checks."""

from __future__ import annotations

import time

import numpy as np
import torch

from fedgossip.compress.base import Compressor
from fedgossip.compress.wire import HEADER_SIZE, frame, unframe

__all__ = ["Codec"]


class Codec:
    """Frame what this rank sends and check what it receives, for one compressor.

    Time spent encoding and decoding is accumulated in ``seconds`` (it is
    neither compute nor MPI time, and the summary shows it apart).
    """

    def __init__(self, compressor: Compressor, rank: int, count: int):
        self.compressor = compressor
        self.rank = rank
        self.count = count  # values per packet: every rank sends vectors of the model's size
        self.max_packet = HEADER_SIZE + compressor.nbytes(count)
        self.seconds = 0.0

    def pack(self, x: torch.Tensor, sequence: int = 0) -> tuple[np.ndarray, int]:
        """Return ``(framed buffer, number of values)`` for ``x``."""
        start = time.perf_counter()
        buffer = frame(self.compressor.encode(x), self.compressor.wire_id, self.rank, sequence)
        self.seconds += time.perf_counter() - start
        return buffer, x.numel()

    def unpack(self, buffer: np.ndarray, source: int, sequence: int | None = None) -> torch.Tensor:
        """Check ``buffer`` from ``source`` and decode it into a float32 CPU tensor."""
        start = time.perf_counter()
        _, packet = unframe(
            buffer, source, self.compressor.wire_id, self.count, self.max_packet - HEADER_SIZE, sequence
        )
        values = self.compressor.decode(packet)
        self.seconds += time.perf_counter() - start
        return values
