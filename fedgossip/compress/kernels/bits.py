"""Pack B-bit codes (1 ≤ B ≤ 8) densely into bytes, and back.

Layout, the same for every bit width: values go in groups of 8, and a group
fills exactly B bytes. Value ``i`` of a group (0 ≤ i < 8) occupies bits
``[i·B, (i+1)·B)`` of the group's B bytes read as one little-endian integer.
So for B = 1 bit ``i`` of byte ``g`` is value ``8g + i``; for B = 4 the low
nibble of a byte holds the earlier value; for B = 8 the codes are the bytes.

``n`` codes take ``ceil(n·B/8)`` bytes. A last, incomplete group is padded
with zero codes and only the bytes it needs are written (and read), so a
packed array never has a byte that no value touches.

Codes are masked to their B bits when packed: a code above ``2**B − 1`` loses
its high bits instead of spilling into its neighbour, so whatever a quantizer
computed from a NaN, the layout stays intact. Unpacking can only produce codes
below ``2**B``, whatever the bytes.

Block-wise codecs call these per block: a block of a multiple of 8 values
starts on a byte boundary (byte ``start·B/8``).

numba's on-disk cache is invalidated per source file and does not follow
calls into other files: after editing this module, delete the kernels'
``__pycache__/*.nb[ic]``, or the quantizers keep the old, inlined code.
"""

from __future__ import annotations

import numpy as np

from fedgossip.compress.kernels.jit import kernel

__all__ = [
    "packed_size",
    "pack",
    "unpack",
    "pack_signs",
    "sign_mask",
    "read_only",
    "float32_field",
    "store_little_endian",
]

_FLOAT32_SIGN = np.uint32(0x80000000)


def packed_size(count: int, bits: int) -> int:
    """Return the bytes that ``count`` codes of ``bits`` bits take: ``ceil(count·bits/8)``."""
    return (count * bits + 7) // 8


@kernel
def _pack_width(codes, bits, out):
    # One uint64 word per group of 8 codes: 8·B ≤ 64 bits always fits.
    n = codes.size
    mask = np.uint64((1 << bits) - 1)
    groups = n // 8
    for g in range(groups):
        word = np.uint64(0)
        for i in range(8):
            word |= (np.uint64(codes[8 * g + i]) & mask) << np.uint64(i * bits)
        for j in range(bits):
            out[g * bits + j] = np.uint8(word >> np.uint64(8 * j))
    rest = n - 8 * groups
    if rest > 0:
        word = np.uint64(0)
        for i in range(rest):
            word |= (np.uint64(codes[8 * groups + i]) & mask) << np.uint64(i * bits)
        for j in range((rest * bits + 7) // 8):
            out[groups * bits + j] = np.uint8(word >> np.uint64(8 * j))


@kernel
def _unpack_width(packed, bits, n, out):
    mask = np.uint64((1 << bits) - 1)
    groups = n // 8
    for g in range(groups):
        word = np.uint64(0)
        for j in range(bits):
            word |= np.uint64(packed[g * bits + j]) << np.uint64(8 * j)
        for i in range(8):
            out[8 * g + i] = np.uint8((word >> np.uint64(i * bits)) & mask)
    rest = n - 8 * groups
    if rest > 0:
        word = np.uint64(0)
        for j in range((rest * bits + 7) // 8):
            word |= np.uint64(packed[groups * bits + j]) << np.uint64(8 * j)
        for i in range(rest):
            out[8 * groups + i] = np.uint8((word >> np.uint64(i * bits)) & mask)


@kernel
def pack(codes, bits, out):
    """Pack ``codes`` (uint8, low ``bits`` bits used) into ``out[:ceil(n·bits/8)]``; 1 ≤ bits ≤ 8.

    The common widths get their own call with a literal width, so the compiler
    inlines it with the shifts known and vectorizes the group loop (2–3 times
    faster than one loop over a run-time width). Each such call costs about half
    a second of compilation in every kernel that packs, so widths 3, 5, 6 and 7
    share the run-time loop.
    """
    if bits == 8:
        out[: codes.size] = codes
    elif bits == 1:
        _pack_width(codes, 1, out)
    elif bits == 2:
        _pack_width(codes, 2, out)
    elif bits == 4:
        _pack_width(codes, 4, out)
    else:
        _pack_width(codes, bits, out)


@kernel
def unpack(packed, bits, n, out):
    """Unpack ``n`` codes of ``bits`` bits (1 ≤ bits ≤ 8) from ``packed`` into ``out[:n]`` (uint8)."""
    if bits == 8:
        out[:n] = packed[:n]
    elif bits == 1:
        _unpack_width(packed, 1, n, out)
    elif bits == 2:
        _unpack_width(packed, 2, n, out)
    elif bits == 4:
        _unpack_width(packed, 4, n, out)
    else:
        _unpack_width(packed, bits, n, out)


@kernel
def pack_signs(x, out):
    """Write bit ``i`` of ``out[k]`` set when ``x[8k + i] < 0`` (the 1-bit layout; zero counts as +)."""
    n = x.size
    groups = n // 8
    # Eight comparisons per byte, with no data-dependent branch: the loop vectorizes.
    for g in range(groups):
        byte = np.uint8(0)
        for i in range(8):
            byte |= np.uint8(x[8 * g + i] < 0) << np.uint8(i)
        out[g] = byte
    if n > 8 * groups:
        byte = np.uint8(0)
        for i in range(n - 8 * groups):
            byte |= np.uint8(x[8 * groups + i] < 0) << np.uint8(i)
        out[groups] = byte


@kernel
def sign_mask(byte, i):
    """Return the float32 sign bit (as a uint32) of value ``i`` of the group whose sign byte is ``byte``.

    Decoders XOR it into the bits of a magnitude: a branch-free negation that,
    unlike a multiplication by ±1, needs no int-to-float conversion, so the
    loop over a group's 8 values vectorizes (3× faster).
    """
    return (np.uint32(byte) << np.uint32(31 - i)) & _FLOAT32_SIGN


def read_only(payload: np.ndarray) -> np.ndarray:
    """Return a read-only view of a received payload, the one array type decoders are compiled for.

    numba compiles a kernel once per argument type, and writable and read-only
    arrays are different types: a payload sliced from a receive buffer is
    writable, one made from bytes is not. Passing both as read-only views halves
    the decoders' compile time and cache.
    """
    view = np.ascontiguousarray(payload, dtype=np.uint8).view()
    view.flags.writeable = False
    return view


def float32_field(payload: np.ndarray, offset: int, count: int) -> np.ndarray:
    """Return ``count`` little-endian float32 values at byte ``offset`` of ``payload``, read-only.

    A view of the payload where it can be (a little-endian host and an aligned
    offset, the usual case); a copy otherwise, so kernels always see aligned
    native floats.
    """
    field = np.require(payload[offset : offset + 4 * count].view("<f4"), np.float32, "A")
    field.flags.writeable = False
    return field


def store_little_endian(field: np.ndarray) -> None:
    """Byte-swap a float32 field just written in a payload when the host is big-endian."""
    if np.little_endian:
        return
    field.byteswap(inplace=True)
