"""``qsgd``: QSGD stochastic quantization (Alistarh et al. 2017), block by block.

Each block ``v`` keeps its norm ``‖v‖₂`` and, per value, a sign and a level
``ξ ∈ {0, …, s}`` with ``s = 2**bits − 1``: the value decodes to
``sign · ξ · ‖v‖₂ / s``. Levels are rounded stochastically, so the code is
unbiased, with variance at most ``min(n/s², √n/s) · ‖v‖₂²`` for a block of
``n`` values (Lemma 3.1). Blocks keep ``n`` small, which is what keeps that
bound (and the error) small (the paper's "bucket size", §3.1).

Payload, little-endian, with ``nblocks = ceil(n / block)``::

    norm   float32 × nblocks        ‖v‖₂ of each block
    signs  ceil(n/8) bytes          1 where the value is negative, 1-bit layout of kernels/bits.py
    levels ceil(n·bits/8) bytes     ξ of each value, packed as in kernels/bits.py
"""

from __future__ import annotations

import dataclasses
import functools
import math
from types import ModuleType

import numpy as np
import torch

from fedgossip.compress.base import Compressor, Packet, as_float32_array, output_tensor
from fedgossip.compress.uniform import BITS, BLOCK, check_quantizer_params

__all__ = ["Qsgd"]


@functools.cache
def _kernels() -> ModuleType:
    # Imported on first use: numba costs ~0.25 s to import, which ranks that never quantize skip.
    from fedgossip.compress.kernels import qsgd

    return qsgd


class Qsgd(Compressor):
    """Quantize each block to a sign and one of 2**bits levels of |x|/‖block‖₂ (QSGD), unbiased."""

    params = (dataclasses.replace(BITS, default=4), dataclasses.replace(BLOCK, default=512))
    unbiased = True

    def __init__(self, bits: int = 4, block: int = 512):
        check_quantizer_params(type(self), bits=bits, block=block)
        self.bits = bits
        self.block = block

    @property
    def variance_bound(self) -> float:
        """Return ``min(n/s², √n/s)`` for a full block: E‖Q(v) − v‖² ≤ this · ‖v‖² (Lemma 3.1)."""
        levels = (1 << self.bits) - 1
        return min(self.block / levels**2, math.sqrt(self.block) / levels)

    @property
    def consensus_step(self) -> float:
        # CHOCO-gossip's analysis scales QSGD by 1/τ with τ = 1 + min(n/s², √n/s), which makes it a
        # δ = 1/τ contraction (Koloskova et al. 2019, example qsgd_s); γ = δ keeps x̂ from diverging
        # where the unscaled error exceeds ‖v‖² (4 bits, block 512: τ = 2.5). On digits (16 nodes,
        # Dirichlet α=0.1, ring, 60 rounds, 4 bits) γ = 1 diverged to chance; 0.4 and 0.6 gave 90.8%.
        return 1.0 / (1.0 + self.variance_bound)

    def nbytes(self, count: int) -> int:
        blocks = -(-count // self.block)
        return 4 * blocks + (count + 7) // 8 + (count * self.bits + 7) // 8

    def encode(self, x: torch.Tensor, key: int = 0) -> Packet:
        kernels = _kernels()
        values = as_float32_array(x)
        n = values.size
        blocks = -(-n // self.block)
        payload = np.empty(self.nbytes(n), dtype=np.uint8)
        norms = payload[: 4 * blocks].view(np.float32)
        signs_end = 4 * blocks + (n + 7) // 8
        kernels.encode(
            values,
            self.bits,
            self.block,
            np.uint64(key),
            norms,
            payload[4 * blocks : signs_end],
            payload[signs_end:],
        )
        kernels.store_little_endian(norms)
        return Packet(count=n, payload=payload, block=self.block)

    def decode(self, packet: Packet, out: torch.Tensor | None = None) -> torch.Tensor:
        self.check_packet(packet)
        kernels = _kernels()
        result = output_tensor(packet.count, out)
        payload = kernels.read_only(packet.payload)
        n = packet.count
        blocks = -(-n // self.block)
        norms = kernels.float32_field(payload, 0, blocks)
        signs_end = 4 * blocks + (n + 7) // 8
        kernels.decode(
            norms, payload[4 * blocks : signs_end], payload[signs_end:], self.bits, self.block, result.numpy()
        )
        return result
