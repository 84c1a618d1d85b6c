"""``sign``: one bit per value and one scale per block (scaled sign compression).

Each value is sent as its sign and decodes to ``±scale``, where the block's
scale is its mean ``|x|``, the best single magnitude in the least-squares sense
(Karimireddy et al. 2019, "Error Feedback Fixes SignSGD", Algorithm 1). The code
is biased: use it with error feedback.

Payload, little-endian, with ``nblocks = ceil(n / block)``::

    scale  float32 × nblocks   mean |x| of each block
    signs  ceil(n/8) bytes     1 where the value is negative (0 counts as +), 1-bit layout of kernels/bits.py
"""

from __future__ import annotations

import dataclasses
import functools
from types import ModuleType

import numpy as np
import torch

from fedgossip.compress.base import Compressor, Packet, as_float32_array, output_tensor
from fedgossip.compress.uniform import BLOCK, check_quantizer_params

__all__ = ["Sign"]


@functools.cache
def _kernels() -> ModuleType:
    # Imported on first use: numba costs ~0.25 s to import, which ranks that never quantize skip.
    from fedgossip.compress.kernels import sign

    return sign


class Sign(Compressor):
    """Send the sign of each value and the mean |x| of each block (1 bit per value)."""

    params = (dataclasses.replace(BLOCK, default=1024),)
    unbiased = False

    def __init__(self, block: int = 1024):
        check_quantizer_params(type(self), block=block)
        self.block = block

    @property
    def consensus_step(self) -> float:
        # The scaled sign removes a fraction δ = ‖v‖₁² / (n‖v‖₂²) of ‖v‖² (2/π ≈ 0.64 for Gaussian
        # blocks, 1/n at worst), so x̂ += Q(x − x̂) always contracts. CHOCO-gossip's analysis takes
        # γ well below δ (Koloskova et al. 2019), but on digits (16 nodes, Dirichlet α=0.1, ring,
        # 60 rounds) γ = 1 gave 93.3% against 91.4% at 0.7 and 88.3% at 0.3 (fp32 gossip: 94.4%).
        return 1.0

    def nbytes(self, count: int) -> int:
        return 4 * -(-count // self.block) + (count + 7) // 8

    def encode(self, x: torch.Tensor, key: int = 0) -> Packet:
        kernels = _kernels()
        values = as_float32_array(x)
        blocks = -(-values.size // self.block)
        payload = np.empty(self.nbytes(values.size), dtype=np.uint8)
        scales = payload[: 4 * blocks].view(np.float32)
        kernels.encode(values, self.block, scales, payload[4 * blocks :])
        kernels.store_little_endian(scales)
        return Packet(count=values.size, payload=payload, block=self.block)

    def decode(self, packet: Packet, out: torch.Tensor | None = None) -> torch.Tensor:
        self.check_packet(packet)
        kernels = _kernels()
        result = output_tensor(packet.count, out)
        payload = kernels.read_only(packet.payload)
        blocks = -(-packet.count // self.block)
        scales = kernels.float32_field(payload, 0, blocks)
        kernels.decode(scales, payload[4 * blocks :], self.block, result.numpy())
        return result
