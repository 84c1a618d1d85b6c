"""How every kernel is compiled, and the counter-based random numbers they share.

Kernels are single-threaded (a rank's cores belong to its training), cached on
disk, and compiled with fast-math so that per-block reductions and conversions
vectorize. Fast-math assumes no NaN: a NaN in the input yields some code, never
an out-of-bounds access, because no index is ever computed from a value and
every code is clamped to its bit width before it is packed.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["kernel", "uniform01"]

kernel = numba.njit(cache=True, fastmath=True, nogil=True, boundscheck=False, error_model="numpy")
"""Decorator for a compiled inner loop."""

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@kernel
def uniform01(key: np.uint64, index: int) -> np.float32:
    """Return a uniform float32 in [0, 1) for element ``index`` of the packet keyed ``key``.

    A counter-based generator (the splitmix64 finaliser applied to key + index·φ)
    instead of a sequential one: each element's draw is independent of the
    others, so the loop that uses it vectorizes, and decoding could replay it.
    The top 24 bits make a float32 with every value k/2^24 equally likely, which
    is what keeps stochastic rounding unbiased.
    """
    z = key + np.uint64(index) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.float32(np.int64(z >> np.uint64(40))) * np.float32(1.0 / 16777216.0)
