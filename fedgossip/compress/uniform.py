"""``uniform``: min–max affine quantization to B bits per value, block by block.

Each block of ``block`` values is mapped onto ``2**bits`` evenly spaced levels
between its minimum and maximum. Rounding to the nearest level bounds the
error by half a step; stochastic rounding makes the code unbiased instead
(Alistarh et al. 2017, "QSGD", §3.1, applied to an affine grid).

Payload, little-endian, with ``nblocks = ceil(n / block)``::

    lo    float32 × nblocks        minimum of each block
    step  float32 × nblocks        (max − min) / (2**bits − 1) of each block
    codes ceil(n·bits/8) bytes     level of each value, packed as in kernels/bits.py
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

import numpy as np
import torch

from fedgossip.compress.base import Compressor, Packet, as_float32_array, output_tensor
from fedgossip.errors import ConfigError
from fedgossip.registry import Plugin, check_params
from fedgossip.specs import Param

__all__ = ["Uniform", "check_quantizer_params"]

BITS = Param("bits", int, 8, "bits per value", ge=1, le=8)
BLOCK = Param("block", int, 1024, "values per block, each with its own scale; a multiple of 8", ge=8)
ROUNDING = Param(
    "rounding",
    str,
    "nearest",
    "nearest (error ≤ step/2) or stochastic (unbiased)",
    choices=("nearest", "stochastic"),
)


def check_quantizer_params(plugin: type[Plugin], **values: Any) -> None:
    """Check a quantizer's arguments: its declared params, then that ``block`` is a multiple of 8.

    Every problem is reported in one ``ConfigError``.
    """
    problems = []
    try:
        check_params(plugin, **values)
    except ConfigError as exc:
        problems.append(str(exc))
    block = values.get("block")
    if isinstance(block, int) and block > 0 and block % 8:
        # Codes of any bit width then start each block on a byte boundary, so blocks
        # are packed and unpacked independently.
        fix = 8 * max(1, round(block / 8))
        problems.append(
            f"block={block}: must be a multiple of 8 so each block starts on a byte; try block={fix}"
        )
    if problems:
        raise ConfigError("; ".join(problems))


@functools.cache
def _kernels() -> ModuleType:
    # Imported on first use: numba costs ~0.25 s to import, which ranks that never quantize skip.
    from fedgossip.compress.kernels import uniform

    return uniform


class Uniform(Compressor):
    """Quantize each block to 2**bits evenly spaced levels between its min and max."""

    params = (BITS, BLOCK, ROUNDING)

    def __init__(self, bits: int = 8, block: int = 1024, rounding: str = "nearest"):
        check_quantizer_params(type(self), bits=bits, block=block, rounding=rounding)
        self.bits = bits
        self.block = block
        self.rounding = rounding
        self.unbiased = rounding == "stochastic"

    @property
    def consensus_step(self) -> float:
        # Min–max codes with nearest rounding are contractive from 2 bits on (the error of each value
        # is at most half a step of its block's range), and γ = 1 trained best on digits: 16 nodes,
        # Dirichlet α=0.1, ring, 60 rounds gave 93.3% at 2 bits with γ = 1 against 91.4% with 0.5,
        # and 94.7% against 90.8% at 4 bits (fp32 gossip: 94.4%). One bit is a sign-like code:
        # unmeasured, so a cautious 0.5.
        return 0.5 if self.bits == 1 else 1.0

    def nbytes(self, count: int) -> int:
        blocks = -(-count // self.block)
        return 8 * blocks + (count * self.bits + 7) // 8

    def encode(self, x: torch.Tensor, key: int = 0) -> Packet:
        kernels = _kernels()
        values = as_float32_array(x)
        blocks = -(-values.size // self.block)
        payload = np.empty(self.nbytes(values.size), dtype=np.uint8)
        lo = payload[: 4 * blocks].view(np.float32)
        step = payload[4 * blocks : 8 * blocks].view(np.float32)
        stochastic = self.rounding == "stochastic"
        kernels.encode(
            values, self.bits, self.block, stochastic, np.uint64(key), lo, step, payload[8 * blocks :]
        )
        kernels.store_little_endian(lo)
        kernels.store_little_endian(step)
        return Packet(count=values.size, payload=payload, block=self.block)

    def decode(self, packet: Packet, out: torch.Tensor | None = None) -> torch.Tensor:
        self.check_packet(packet)
        kernels = _kernels()
        result = output_tensor(packet.count, out)
        payload = kernels.read_only(packet.payload)
        blocks = -(-packet.count // self.block)
        lo = kernels.float32_field(payload, 0, blocks)
        step = kernels.float32_field(payload, 4 * blocks, blocks)
        kernels.decode(lo, step, payload[8 * blocks :], self.bits, self.block, result.numpy())
        return result
