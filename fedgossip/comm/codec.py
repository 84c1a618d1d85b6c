"""Encode a vector into a framed packet and back: the compressor plus the wire checks."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from fedgossip.compress.base import Compressor
from fedgossip.compress.wire import HEADER_SIZE, frame, unframe
from fedgossip.errors import WireError

__all__ = ["Codec"]

_KEY_STREAM = 3  # keeps the codec's draws apart from the other generators seeded by (seed, rank)


class Codec:
    """Frame what this rank sends and check what it receives, for one compressor.

    Each packet gets a fresh 64-bit key for the compressor's random choices
    (stochastic rounding, random-k indices), drawn from a generator seeded by
    the run seed *and the rank*: quantization noise must be independent across
    ranks, and a run must still be reproducible from its seed. Time spent
    encoding and decoding is accumulated in ``seconds`` (it is neither compute
    nor MPI time, and the summary shows it apart).
    """

    def __init__(self, compressor: Compressor, rank: int, count: int, seed: int = 0):
        self.compressor = compressor
        self.rank = rank
        self.count = count  # values per packet: every rank sends vectors of the model's size
        self.max_packet = HEADER_SIZE + compressor.nbytes(count)
        self.seconds = 0.0
        self._keys = np.random.default_rng([seed, rank, _KEY_STREAM])

    def pack(self, x: torch.Tensor, sequence: int = 0, kind: int = 0) -> tuple[np.ndarray, int]:
        """Return ``(framed buffer, number of values)`` for ``x``; ``kind`` tells the algorithm what it is."""
        start = time.perf_counter()
        key = int(self._keys.integers(0, 2**63))
        buffer = frame(self.compressor.encode(x, key), self.compressor.wire_id, self.rank, sequence, kind)
        self.seconds += time.perf_counter() - start
        return buffer, x.numel()

    def unpack(
        self,
        buffer: np.ndarray,
        source: int,
        sequence: int | None = None,
        out: torch.Tensor | None = None,
        kind: int | None = None,
    ) -> torch.Tensor:
        """Check ``buffer`` from ``source`` and decode it into ``out`` or a new float32 CPU tensor."""
        start = time.perf_counter()
        header, packet = unframe(
            buffer, source, self.compressor.wire_id, self.count, self.max_packet - HEADER_SIZE, sequence
        )
        if kind is not None and header.kind != kind:
            raise WireError(f"malformed packet from node {source}: kind {header.kind}, expected {kind}")
        try:
            values = self.compressor.decode(packet, out)
        except WireError as exc:
            raise WireError(f"malformed packet from node {source}: {exc}") from None
        # A well-formed packet can still carry NaN or ±inf (a NaN scale, a diverged model):
        # averaging it in would silently poison this rank's model, so stop with the sender's name.
        if not bool(torch.isfinite(values).all()):
            raise WireError(_non_finite_message(source, self.rank))
        self.seconds += time.perf_counter() - start
        return values

    def state_dict(self) -> dict[str, Any]:
        """Return the key generator's state and ``seconds``, so a resumed run draws the same keys."""
        return {"keys": self._keys.bit_generator.state, "seconds": self.seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`; an older one without ``seconds`` leaves it as is."""
        expected, optional = {"keys"}, {"seconds"}
        if not expected <= set(state) <= expected | optional:
            raise ValueError(f"codec state has keys {sorted(state)}, expected {sorted(expected | optional)}")
        self._keys.bit_generator.state = state["keys"]
        self.seconds = float(state.get("seconds", self.seconds))


def _non_finite_message(source: int, rank: int) -> str:
    """Say who holds the NaN or infinite values a packet decoded to, and what to do about it."""
    if source == rank:
        return (
            f"node {source} decoded its own packet to NaN or infinite values: this node's own model "
            "holds NaN/Inf (training diverged); lower --lr or check this node's data"
        )
    return (
        f"node {source} sent NaN or infinite values to node {rank}: that node's model has likely "
        "diverged or its data is bad; lower --lr or check that node's data"
    )
