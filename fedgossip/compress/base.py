"""The compressor contract, the ``Packet`` it produces, and the registry of compressors."""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from fedgossip.registry import Plugin, Registry

__all__ = ["Packet", "Compressor", "COMPRESSORS", "compressor_id"]


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
    """Encode float32 vectors into packets and back."""

    lossless: bool = False  # True when decode(encode(x)) == x exactly for every float32 x

    @property
    def wire_id(self) -> int:
        return compressor_id(self.name)

    @abstractmethod
    def encode(self, x: torch.Tensor) -> Packet:
        """Encode a 1-D float32 tensor."""

    @abstractmethod
    def decode(self, packet: Packet) -> torch.Tensor:
        """Decode a packet into a new 1-D float32 CPU tensor of ``packet.count`` values."""

    @abstractmethod
    def nbytes(self, count: int) -> int:
        """Return the exact payload size in bytes for ``count`` values (upper bound if data-dependent)."""


COMPRESSORS: Registry[Compressor] = Registry("compressors", Compressor)
