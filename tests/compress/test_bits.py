"""Bit packing: the layout every quantizer's payload uses, for every width from 1 to 8 bits."""

from __future__ import annotations

import numpy as np
import pytest

from fedgossip.compress.kernels.bits import pack, pack_signs, packed_size, unpack

WIDTHS = range(1, 9)
COUNTS = [0, 1, 7, 8, 9, 15, 16, 17, 63, 1000, 1001]


def _reference_pack(codes: np.ndarray, bits: int) -> bytes:
    """Pack with Python integers, straight from the documented layout."""
    groups = []
    for g in range(0, codes.size, 8):
        word = sum(int(code) << (i * bits) for i, code in enumerate(codes[g : g + 8]))
        groups.append(word.to_bytes(bits, "little"))
    return b"".join(groups)[: packed_size(codes.size, bits)]


@pytest.mark.parametrize("bits", WIDTHS)
@pytest.mark.parametrize("n", COUNTS)
def test_unpack_inverts_pack(bits, n):
    codes = np.random.default_rng(n * 10 + bits).integers(0, 1 << bits, n).astype(np.uint8)
    packed = np.empty(packed_size(n, bits), dtype=np.uint8)
    pack(codes, bits, packed)
    back = np.empty(n, dtype=np.uint8)
    unpack(packed, bits, n, back)
    np.testing.assert_array_equal(back, codes)


@pytest.mark.parametrize("bits", WIDTHS)
@pytest.mark.parametrize("n", [1, 8, 13, 100])
def test_pack_follows_the_documented_layout(bits, n):
    codes = np.random.default_rng(bits).integers(0, 1 << bits, n).astype(np.uint8)
    packed = np.empty(packed_size(n, bits), dtype=np.uint8)
    pack(codes, bits, packed)
    assert packed.tobytes() == _reference_pack(codes, bits)


@pytest.mark.parametrize("bits", WIDTHS)
@pytest.mark.parametrize("n", COUNTS)
def test_packed_size_is_ceil_of_n_bits_over_8(bits, n):
    assert packed_size(n, bits) == -(-n * bits // 8)


@pytest.mark.parametrize("bits", WIDTHS)
@pytest.mark.parametrize("n", [1, 9, 100])
def test_pack_writes_only_its_bytes(bits, n):
    codes = np.full(n, (1 << bits) - 1, dtype=np.uint8)
    packed = np.full(packed_size(n, bits) + 4, 0xAB, dtype=np.uint8)
    pack(codes, bits, packed)
    assert packed[-4:].tolist() == [0xAB] * 4


@pytest.mark.parametrize("bits", range(1, 8))
def test_codes_above_the_width_are_masked_not_spilled(bits):
    # A code of 255 keeps only its low `bits` bits; its neighbours are untouched.
    codes = np.array([255, 0, 255, 0, 255, 0, 255, 0, 255], dtype=np.uint8)
    packed = np.empty(packed_size(codes.size, bits), dtype=np.uint8)
    pack(codes, bits, packed)
    back = np.empty(codes.size, dtype=np.uint8)
    unpack(packed, bits, codes.size, back)
    np.testing.assert_array_equal(back, codes & ((1 << bits) - 1))


@pytest.mark.parametrize("bits", WIDTHS)
def test_unpack_of_any_bytes_gives_codes_within_the_width(bits):
    n = 1001
    packed = np.random.default_rng(bits).integers(0, 256, packed_size(n, bits)).astype(np.uint8)
    back = np.empty(n, dtype=np.uint8)
    unpack(packed, bits, n, back)
    assert back.max() < 1 << bits


@pytest.mark.parametrize("n", COUNTS)
def test_sign_bits_use_the_one_bit_layout_and_count_zero_as_positive(n):
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    x[::5] = 0.0
    x[1::7] = -0.0
    packed = np.empty(packed_size(n, 1), dtype=np.uint8)
    pack_signs(x, packed)
    expected = np.empty_like(packed)
    pack((x < 0).astype(np.uint8), 1, expected)
    np.testing.assert_array_equal(packed, expected)
    np.testing.assert_array_equal(np.unpackbits(packed, bitorder="little")[:n], x < 0)
