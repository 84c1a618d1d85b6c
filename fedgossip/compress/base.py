"""The compressor contract, the ``Packet`` it produces, and the registry of compressors."""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from fedgossip.errors import WireError
from fedgossip.registry import Plugin, Registry

__all__ = ["Packet", "Compressor", "COMPRESSORS", "compressor_id", "as_float32_array", "output_tensor"]


@dataclass(frozen=True)
class Packet:
    """An encoded vector: what goes on the wire after the header.

    ``count`` is the number of float32 values it decodes to; ``payload`` is a
    flat uint8 array whose length is exactly what crosses the wire.
    """

    count: int
    payload: np.ndarray
    block: int = 0  # block size of block-wise codes; 0 when the code has no blocks


def compressor_id(name: str) -> int:
    """Return the 16-bit id written in packet headers for compressor ``name``.

    Derived from the name, so third-party compressors get an id without a
    central table; a receiver only checks that it matches the compressor it expects.
    """
    return zlib.crc32(name.encode()) & 0xFFFF


class Compressor(Plugin, ABC):
    """Encode float32 vectors into packets and back.

    A compressor is stateless: error-feedback residuals and public copies live
    in ``compress/feedback.py`` and ``comm/references.py``. Random choices
    (stochastic rounding, random-k indices) come from the ``key`` passed to
    ``encode``, so the same input and key always give the same packet.
    """

    lossless: bool = False  # True when decode(encode(x)) == x exactly for every float32 x
    unbiased: bool = False  # True when E[decode(encode(x))] == x over keys: no error feedback needed
    block: int = 0  # block size written in the header (0: the code has no blocks)

    @property
    def wire_id(self) -> int:
        return compressor_id(self.name)

    @property
    def consensus_step(self) -> float:
        """Return CHOCO-gossip's default consensus step γ for this compressor (Koloskova et al. 2019).

        Coarser codes need a smaller γ: the public copies then absorb the
        compression error over several rounds instead of amplifying it.
        """
        return 1.0

    @abstractmethod
    def encode(self, x: torch.Tensor, key: int = 0) -> Packet:
        """Encode a 1-D float32 tensor; ``key`` (0 ≤ key < 2**64) seeds the code's random choices."""

    @abstractmethod
    def decode(self, packet: Packet, out: torch.Tensor | None = None) -> torch.Tensor:
        """Decode a packet into ``out`` (a 1-D float32 CPU tensor of ``packet.count`` values) or a new one.

        A payload that this compressor could not have produced (wrong length,
        wrong block size, impossible indices) is a ``WireError``; the codec adds
        the sender's rank to the message.
        """

    @abstractmethod
    def nbytes(self, count: int) -> int:
        """Return the exact payload size in bytes of a packet of ``count`` values."""

    def check_packet(self, packet: Packet) -> None:
        """Raise ``WireError`` unless the payload has the size and block this compressor produces."""
        problems = []
        if packet.block != self.block:
            problems.append(f"block size {packet.block}, expected {self.block}")
        expected = self.nbytes(packet.count)
        if packet.payload.size != expected:
            problems.append(f"{packet.payload.size} payload bytes, {self.name} makes {expected}")
        if problems:
            raise WireError(f"{self.name} packet of {packet.count} values has " + " and ".join(problems))


def as_float32_array(x: torch.Tensor) -> np.ndarray:
    """Return ``x`` as a contiguous 1-D float32 numpy array on the CPU (no copy when it already is one)."""
    return x.detach().to("cpu", torch.float32).contiguous().reshape(-1).numpy()


def output_tensor(count: int, out: torch.Tensor | None) -> torch.Tensor:
    """Return ``out`` after checking it can hold ``count`` float32 values, or a new tensor."""
    if out is None:
        return torch.empty(count, dtype=torch.float32)
    fits = out.dtype == torch.float32 and out.device.type == "cpu" and out.numel() == count
    if not (fits and out.is_contiguous()):
        raise ValueError(
            f"decode needs a contiguous float32 CPU tensor of {count} values, got "
            f"{out.dtype} {tuple(out.shape)} on {out.device}"
        )
    return out


COMPRESSORS: Registry[Compressor] = Registry("compressors", Compressor)
