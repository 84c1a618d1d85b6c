"""Kernels of scaled sign compression: one bit per value and the block's mean |x|.

The scale ``‖v‖₁ / n`` is the one that minimises ``‖v − c·sign(v)‖²`` over
``c``: the scaled sign of EF-SignSGD (Karimireddy et al. 2019, Algorithm 1),
taken per block.
"""

from __future__ import annotations

import numpy as np

from fedgossip.compress.kernels.bits import (
    float32_field,
    pack_signs,
    read_only,
    sign_mask,
    store_little_endian,
)
from fedgossip.compress.kernels.jit import kernel

__all__ = ["encode", "decode", "float32_field", "read_only", "store_little_endian"]


@kernel
def _mean_abs(x):
    # Summed in float64, like QSGD's norm: a block of large float32 values cannot overflow.
    total = 0.0
    for i in range(x.size):
        total += abs(np.float64(x[i]))
    return np.float32(total / x.size)


@kernel
def _expand(signs, scale, out):
    n = out.size
    groups = n // 8
    magnitude = np.float32(scale).view(np.uint32)
    words = out.view(np.uint32)
    for g in range(groups):
        byte = signs[g]
        for i in range(8):
            words[8 * g + i] = magnitude ^ sign_mask(byte, i)
    for i in range(8 * groups, n):
        words[i] = magnitude ^ sign_mask(signs[i >> 3], i & 7)


@kernel
def encode(x, block, scales, signs):
    """Write each block's mean |x| into ``scales`` and the sign bits of ``x`` into ``signs``."""
    n = x.size
    for b in range(scales.size):
        start = b * block
        stop = min(start + block, n)
        xs = x[start:stop]
        scales[b] = _mean_abs(xs)
        # start is a multiple of 8 (block is), so the block's sign bits start on a byte.
        pack_signs(xs, signs[start // 8 :])


@kernel
def decode(scales, signs, block, out):
    """Fill ``out`` with ``±scale`` of each block, negative where the sign bit is set."""
    n = out.size
    for b in range(scales.size):
        start = b * block
        stop = min(start + block, n)
        _expand(signs[start // 8 :], scales[b], out[start:stop])
