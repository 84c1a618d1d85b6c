"""``fp16`` and ``bf16``: every value as a 2-byte float, little-endian on the wire.

Half the bytes of ``none`` at the cost of rounding each value to nearest even:

- ``fp16`` (IEEE binary16) keeps 11 significant bits but only reaches ±65504;
- ``bf16`` (bfloat16) keeps the float32 exponent range but only 8 significant bits.

A value that the format represents exactly comes back exactly, so neither code
drifts a model that already lives on its grid. Rounding to nearest is biased
(``E[decode(encode(x))] ≠ x``), but its relative error (2**-11 for fp16,
2**-8 for bf16) is small enough for CHOCO's full step γ = 1.
"""

from __future__ import annotations

import numpy as np
import torch

from fedgossip.compress.base import Compressor, Packet, as_float32_array, output_tensor

__all__ = ["Float16", "BFloat16", "FP16_MAX"]

FP16_MAX = 65504.0
"""Largest finite binary16 value; larger magnitudes are sent as ±FP16_MAX."""


class _TwoByteFloat(Compressor):
    """Send each value as a 2-byte float of ``_dtype``; subclasses say how values are rounded."""

    lossless = False
    unbiased = False
    _dtype: torch.dtype

    def _round(self, values: torch.Tensor) -> torch.Tensor:
        """Return ``values`` (1-D float32) rounded to ``_dtype``."""
        return values.to(self._dtype)

    def encode(self, x: torch.Tensor, key: int = 0) -> Packet:
        halves = self._round(torch.from_numpy(as_float32_array(x)))
        # The int16 view is a bit copy; astype("<i2") swaps bytes only on a big-endian host,
        # so mixed clusters agree on the wire.
        payload = halves.view(torch.int16).numpy().astype("<i2", copy=False).view(np.uint8)
        return Packet(count=halves.numel(), payload=payload)

    def decode(self, packet: Packet, out: torch.Tensor | None = None) -> torch.Tensor:
        self.check_packet(packet)
        result = output_tensor(packet.count, out)
        payload = packet.payload
        if not (payload.flags.writeable and payload.flags.c_contiguous):
            # torch.from_numpy warns on read-only arrays; a copy of 2n bytes is cheaper than the noise.
            payload = payload.copy()
        bits = payload.view("<i2").astype(np.int16, copy=False)  # native order for torch
        # torch converts 2-byte floats to float32 about 20x faster than numpy does (measured, 1e6 values).
        result.copy_(torch.from_numpy(bits).view(self._dtype))
        return result

    def nbytes(self, count: int) -> int:
        return 2 * count


class Float16(_TwoByteFloat):
    """Send values as IEEE half-precision floats (2 bytes each), saturating at ±65504.

    A value beyond the fp16 range is sent as ±65504 instead of ±inf: one
    diverging weight must not turn a neighbour's model into inf (and, once
    averaged with a −inf, into NaN). Infinite inputs saturate the same way;
    NaN stays NaN, so a broken model is still visible to its neighbours.
    """

    _dtype = torch.float16

    def _round(self, values: torch.Tensor) -> torch.Tensor:
        # The conversion rounds exactly the values ≥ 65520 (and infinities) to ±inf; clamping
        # afterwards maps them to ±65504 and lets NaN through, on 2-byte data.
        return values.to(torch.float16).clamp_(-FP16_MAX, FP16_MAX)


class BFloat16(_TwoByteFloat):
    """Send values as bfloat16 (2 bytes each): float32's range, 8 significant bits.

    Rounding is torch's: to nearest, ties to even. Only float32 values beyond
    bfloat16's largest finite value (about 3.39e38) become ±inf, as IEEE
    rounding prescribes; a model that large has diverged already.
    """

    _dtype = torch.bfloat16
