"""Kernels of QSGD (Alistarh et al. 2017), block by block.

Within a block ``v`` with ``s`` levels, value ``x`` becomes
``sign(x) · ξ · ‖v‖₂ / s`` where ``ξ = floor(|x|/‖v‖₂ · s + u)``, ``u ~ U[0, 1)``:
the paper's stochastic quantization Q_s (§3.1), unbiased with variance at most
``min(n/s², √n/s) · ‖v‖₂²`` (Lemma 3.1). The norm pass brings the block into
L1; the quantizing pass then reads it from there.
"""

from __future__ import annotations

import numpy as np

from fedgossip.compress.kernels.bits import (
    float32_field,
    pack,
    pack_signs,
    read_only,
    sign_mask,
    store_little_endian,
    unpack,
)
from fedgossip.compress.kernels.jit import kernel, uniform01

__all__ = ["encode", "decode", "float32_field", "read_only", "store_little_endian"]


@kernel
def _norm(x):
    # Summed in float64: squares of float32 values overflow float32 from |x| ≈ 2e19.
    total = 0.0
    for i in range(x.size):
        v = np.float64(x[i])
        total += v * v
    return np.float32(np.sqrt(total))


@kernel
def _levels(x, scale, top, key, start, levels):
    for i in range(x.size):
        t = abs(x[i]) * scale + uniform01(key, start + i)
        # Clamped to [0, s]: float error can push |x|/‖v‖·s + u just past s, and a NaN anywhere.
        levels[i] = np.uint8(np.int32(min(max(t, np.float32(0.0)), top)))


@kernel
def _dequantize(levels, signs, step, out):
    n = out.size
    groups = n // 8
    words = out.view(np.uint32)
    for g in range(groups):
        byte = signs[g]
        for i in range(8):
            magnitude = np.float32(np.float32(levels[8 * g + i]) * step)
            words[8 * g + i] = magnitude.view(np.uint32) ^ sign_mask(byte, i)
    for i in range(8 * groups, n):
        magnitude = np.float32(np.float32(levels[i]) * step)
        words[i] = magnitude.view(np.uint32) ^ sign_mask(signs[i >> 3], i & 7)


@kernel
def encode(x, bits, block, key, norms, signs, packed):
    """Quantize ``x`` block by block into ``norms``, the sign bits and the packed levels.

    ``key`` is a uint64 that seeds the stochastic rounding.
    """
    n = x.size
    top = np.float32((1 << bits) - 1)
    scratch = np.empty(block if bits != 8 else 0, dtype=np.uint8)
    for b in range(norms.size):
        start = b * block
        stop = min(start + block, n)
        xs = x[start:stop]
        norm = _norm(xs)
        norms[b] = norm
        # A zero block gets scale 0, so every level is floor(u) = 0 and it decodes to zeros.
        scale = top / norm if norm > 0 else np.float32(0.0)
        levels = packed[start:stop] if bits == 8 else scratch[: stop - start]
        _levels(xs, np.float32(scale), top, key, start, levels)
        # start is a multiple of 8 (block is): the block's signs and levels start on a byte.
        pack_signs(xs, signs[start // 8 :])
        if bits != 8:
            pack(levels, bits, packed[start * bits // 8 :])


@kernel
def decode(norms, signs, packed, bits, block, out):
    """Fill ``out`` with ``sign · level · norm / s`` of each block."""
    n = out.size
    top = np.float32((1 << bits) - 1)
    scratch = np.empty(block if bits != 8 else 0, dtype=np.uint8)
    for b in range(norms.size):
        start = b * block
        stop = min(start + block, n)
        step = norms[b] / top
        block_signs = signs[start // 8 :]
        # Two calls rather than one array variable: the payload is read-only, the scratch is not.
        if bits == 8:
            _dequantize(packed[start:stop], block_signs, step, out[start:stop])
        else:
            levels = scratch[: stop - start]
            unpack(packed[start * bits // 8 :], bits, stop - start, levels)
            _dequantize(levels, block_signs, step, out[start:stop])
