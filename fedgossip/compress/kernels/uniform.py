"""Kernels of min–max affine quantization, block by block.

Each block is read from memory once: the min/max pass brings it into L1, and
the quantizing pass then reads it from there. The per-block helpers take
slices, so the compiler sees short unit-stride loops it vectorizes.
"""

from __future__ import annotations

import numpy as np

from fedgossip.compress.kernels.bits import float32_field, pack, read_only, store_little_endian, unpack
from fedgossip.compress.kernels.jit import kernel, uniform01

__all__ = ["encode", "decode", "float32_field", "read_only", "store_little_endian"]


_MAGNITUDE = np.int32(0x7FFFFFFF)


@kernel
def _min_max(x):
    # numba leaves a float32 min/max reduction scalar, even with fast-math (7 GB/s),
    # but vectorizes an int32 one (30+ GB/s). Flipping the magnitude bits of negative
    # floats makes their bit patterns sort like their values (−0 just below +0).
    # A NaN sorts beyond ±inf, so it becomes the block's lo or hi and its whole block
    # decodes to NaN instead of the NaN disappearing.
    keys = x.view(np.int32)
    lo = np.int32(0x7FFFFFFF)
    hi = np.int32(-0x80000000)
    for i in range(keys.size):
        k = np.int32(keys[i] ^ ((keys[i] >> 31) & _MAGNITUDE))
        lo = min(lo, k)
        hi = max(hi, k)
    lo = np.int32(lo ^ ((lo >> 31) & _MAGNITUDE))
    hi = np.int32(hi ^ ((hi >> 31) & _MAGNITUDE))
    return lo.view(np.float32), hi.view(np.float32)


@kernel
def _round_nearest(x, lo, inv_step, top, codes):
    for i in range(x.size):
        # Clamped before the conversion: float error at the top of the range
        # (and anything a NaN makes) stays within the B-bit code range.
        q = min(max((x[i] - lo) * inv_step + np.float32(0.5), np.float32(0.0)), top)
        codes[i] = np.uint8(np.int32(q))


@kernel
def _round_stochastic(x, lo, inv_step, top, key, start, codes):
    for i in range(x.size):
        # floor(t + u) with u ~ U[0, 1) is ceil(t) with probability frac(t):
        # E[code] = t, so the decoded value is unbiased (Alistarh et al. 2017, §3.1).
        t = (x[i] - lo) * inv_step + uniform01(key, start + i)
        q = min(max(t, np.float32(0.0)), top)
        codes[i] = np.uint8(np.int32(q))


@kernel
def _dequantize(codes, lo, step, out):
    for i in range(out.size):
        out[i] = lo + np.float32(codes[i]) * step


@kernel
def encode(x, bits, block, stochastic, key, lo_out, step_out, packed):
    """Quantize ``x`` block by block into ``lo_out``, ``step_out`` and the packed codes.

    ``key`` is a uint64; it is used only when ``stochastic``.
    """
    n = x.size
    top = np.float32((1 << bits) - 1)
    scratch = np.empty(block if bits != 8 else 0, dtype=np.uint8)
    for b in range(lo_out.size):
        start = b * block
        stop = min(start + block, n)
        xs = x[start:stop]
        lo, hi = _min_max(xs)
        # Scalars in float64: (hi − lo) of finite float32 values cannot overflow there.
        width = np.float64(hi) - np.float64(lo)
        step = np.float32(width / top)
        # A constant block gets step 0 and codes 0: it decodes exactly to lo.
        inv_step = np.float32(top / width) if width > 0 else np.float32(0.0)
        lo_out[b] = lo
        step_out[b] = step
        codes = packed[start:stop] if bits == 8 else scratch[: stop - start]
        if stochastic:
            _round_stochastic(xs, lo, inv_step, top, key, start, codes)
        else:
            _round_nearest(xs, lo, inv_step, top, codes)
        if bits != 8:
            # start is a multiple of 8 (block is), so the block's codes start on a byte.
            pack(codes, bits, packed[start * bits // 8 :])


@kernel
def decode(lo_in, step_in, packed, bits, block, out):
    """Fill ``out`` with ``lo + code·step`` of each block."""
    n = out.size
    scratch = np.empty(block if bits != 8 else 0, dtype=np.uint8)
    for b in range(lo_in.size):
        start = b * block
        stop = min(start + block, n)
        # Two calls rather than one array variable: the payload is read-only, the scratch is not.
        if bits == 8:
            _dequantize(packed[start:stop], lo_in[b], step_in[b], out[start:stop])
        else:
            codes = scratch[: stop - start]
            unpack(packed[start * bits // 8 :], bits, stop - start, codes)
            _dequantize(codes, lo_in[b], step_in[b], out[start:stop])
