"""topk and randk: exactly k values, the right positions, and packets that cannot lie about them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fedgossip.compress import COMPRESSORS
from fedgossip.compress.base import Packet
from fedgossip.compress.sparse import RandK, TopK, random_positions
from fedgossip.errors import ConfigError, WireError


def _distinct_magnitudes(n: int, seed: int = 0) -> torch.Tensor:
    """Return n nonzero values with pairwise different |x|, in random order and with random signs."""
    rng = np.random.default_rng(seed)
    magnitudes = rng.permutation(np.arange(1, n + 1, dtype=np.float32))
    return torch.from_numpy(magnitudes * rng.choice(np.float32([-1, 1]), n))


def _topk_packet(n: int, positions: list[int], values: list[float] | None = None) -> Packet:
    """Return a hand-made topk packet with a uint32 position list."""
    k = len(positions)
    body = np.asarray(values or [1.0] * k, dtype="<f4").tobytes() + np.asarray(positions, "<u4").tobytes()
    return Packet(count=n, payload=np.frombuffer(body, dtype=np.uint8).copy())


@pytest.mark.parametrize(
    ("ratio", "n", "k"),
    [
        (0.1, 30, 3),  # the decimal 0.1, although 0.1 * 30 == 3.0000000000000004 in floating point
        (0.1, 31, 4),
        (0.01, 150, 2),
        (0.01, 1, 1),  # at least one value
        (1e-9, 10, 1),
        (0.01, 0, 0),
        (0.5, 7, 4),
        (1.0, 7, 7),
    ],
)
@pytest.mark.parametrize("name", ["topk", "randk"])
def test_k_is_the_ceiling_of_ratio_times_n_and_at_least_one(name, ratio, n, k):
    assert COMPRESSORS.create(f"{name}:ratio={ratio}").k(n) == k


@pytest.mark.parametrize("ratio", ["0", "-0.1", "1.5", "nan"])
@pytest.mark.parametrize("name", ["topk", "randk"])
def test_ratio_outside_zero_to_one_is_refused(name, ratio):
    with pytest.raises(ConfigError, match="ratio"):
        COMPRESSORS.create(f"{name}:ratio={ratio}")


@pytest.mark.parametrize("cls", [TopK, RandK])
def test_direct_construction_checks_the_ratio_too(cls):
    with pytest.raises(ConfigError, match=r"ratio=0\.0.*must be > 0"):
        cls(ratio=0.0)


@pytest.mark.parametrize(
    ("n", "ratio", "bitmap"),
    [
        (10_000, 0.01, False),  # k = 100: 400 index bytes < 1250 bitmap bytes
        (3200, 0.03125, False),  # k = 100: 400 index bytes == 400 bitmap bytes, a tie goes to the list
        (3200, 0.0315, True),  # k = 101: 404 index bytes > 400 bitmap bytes
        (1000, 0.1, True),  # k = 100: 400 index bytes > 125 bitmap bytes
        (13, 0.5, True),  # bitmap of 2 bytes, the last one partly used
        (1, 1.0, True),
    ],
)
def test_topk_keeps_exactly_the_k_largest_magnitudes_in_either_position_encoding(n, ratio, bitmap):
    compressor = TopK(ratio=ratio)
    x = _distinct_magnitudes(n)
    k = compressor.k(n)
    largest = np.sort(np.argsort(-np.abs(x.numpy()))[:k])
    positions = compressor.encode(x).payload[4 * k :]
    if bitmap:
        assert positions.size == math.ceil(n / 8)
        assert np.array_equal(np.flatnonzero(np.unpackbits(positions, count=n, bitorder="little")), largest)
    else:
        assert np.array_equal(positions.view("<u4"), largest)
    expected = np.zeros(n, dtype=np.float32)
    expected[largest] = x.numpy()[largest]
    assert np.array_equal(compressor.decode(compressor.encode(x)).numpy(), expected)


def test_topk_sends_values_then_positions_in_ascending_order():
    x = torch.zeros(10_000)
    x[[9000, 17, 4242]] = torch.tensor([-3.0, 1.0, 2.0])
    payload = TopK(ratio=0.0003).encode(x).payload  # k = 3, positions as a list
    assert np.frombuffer(payload, "<f4", count=3).tolist() == [1.0, 2.0, -3.0]
    assert np.frombuffer(payload, "<u4", offset=12).tolist() == [17, 4242, 9000]


def test_topk_bitmap_sets_bit_i_mod_8_of_byte_i_div_8():
    x = torch.zeros(20)
    x[[3, 9, 19]] = 1.0
    payload = TopK(ratio=0.15).encode(x).payload  # k = 3, bitmap of 3 bytes beats 12 index bytes
    assert payload[12:].tolist() == [0b1000, 0b10, 0b1000]


def test_topk_breaks_ties_by_lowest_position():
    x = torch.tensor([1.0, -1.0, 2.0, 1.0, -2.0, 1.0])
    decoded = TopK(ratio=0.5).decode(TopK(ratio=0.5).encode(x))  # k = 3: both 2s, then the first 1
    assert decoded.tolist() == [1.0, 0.0, 2.0, 0.0, -2.0, 0.0]


def test_topk_sends_nan_as_the_largest_value():
    x = torch.tensor([5.0, float("nan"), 1.0, -7.0])
    decoded = TopK(ratio=0.5).decode(TopK(ratio=0.5).encode(x))
    assert torch.isnan(decoded[1]) and decoded[[0, 2, 3]].tolist() == [0.0, 0.0, -7.0]


@pytest.mark.parametrize("ratio", [0.01, 0.1, 0.5])
def test_topk_is_contractive(ratio):
    x = torch.randn(5000, generator=torch.Generator().manual_seed(2))
    compressor = TopK(ratio=ratio)
    error = float(((compressor.decode(compressor.encode(x)) - x) ** 2).sum())
    assert error <= (1 - compressor.k(5000) / 5000) * float((x**2).sum())


def test_topk_refuses_more_values_than_uint32_positions_can_address():
    huge = torch.zeros(1).expand(2**32)  # a view: no 16 GiB allocated
    with pytest.raises(ConfigError, match="uint32"):
        TopK().encode(huge)


@pytest.mark.parametrize(
    ("positions", "problem"),
    [
        ([5, 5, 9], "not strictly increasing"),
        ([9, 5, 20], "not strictly increasing"),
        ([5, 9, 3000], "out of range"),
        ([5, 9, 2**32 - 1], "out of range"),
    ],
)
def test_topk_rejects_bad_position_lists(positions, problem):
    with pytest.raises(WireError, match=problem):
        TopK(ratio=0.001).decode(_topk_packet(3000, positions))  # k = 3, positions as a list


@pytest.mark.parametrize(
    ("bitmap", "problem"),
    [
        ([0b11, 0], "2 bits set in its bitmap, expected 3"),  # one position dropped
        ([0b111, 0b1], "4 bits set in its bitmap, expected 3"),
        ([0b111, 0b100], "bits set beyond the 10 values"),  # bit 10 of a 10-value vector
    ],
)
def test_topk_rejects_bitmaps_with_the_wrong_number_of_bits(bitmap, problem):
    compressor = TopK(ratio=0.3)  # k = 3 of 10: 12 index bytes against a 2-byte bitmap
    good = compressor.encode(torch.tensor([1.0, 2.0, 3.0] + [0.0] * 7)).payload
    payload = np.concatenate([good[:12], np.asarray(bitmap, dtype=np.uint8)])
    with pytest.raises(WireError, match=problem):
        compressor.decode(Packet(count=10, payload=payload))


@pytest.mark.parametrize(("n", "ratio"), [(1000, 0.01), (1000, 0.3), (1000, 0.9), (7, 1.0), (1, 0.5)])
def test_randk_decodes_the_values_at_the_positions_its_key_draws(n, ratio):
    compressor = RandK(ratio=ratio)
    x = torch.arange(1, n + 1, dtype=torch.float32)  # each value names its position
    decoded = compressor.decode(compressor.encode(x, key=1234)).numpy()
    kept = np.flatnonzero(decoded)
    assert kept.size == compressor.k(n)
    assert np.array_equal(decoded[kept], x.numpy()[kept])
    assert np.array_equal(kept, random_positions(1234, n, compressor.k(n)))


def test_randk_payload_is_the_key_then_the_values():
    payload = RandK(ratio=0.5).encode(torch.tensor([4.0, 4.0, 4.0, 4.0]), key=2**64 - 2).payload
    assert int(np.frombuffer(payload, "<u8", count=1)[0]) == 2**64 - 2
    assert np.frombuffer(payload, "<f4", offset=8).tolist() == [4.0, 4.0]


def test_randk_same_key_same_positions_other_key_other_positions():
    compressor = RandK(ratio=0.05)
    x = torch.arange(1, 1001, dtype=torch.float32)
    first, again, other = (compressor.decode(compressor.encode(x, key)) for key in (7, 7, 8))
    assert torch.equal(first, again)
    assert not torch.equal(first != 0, other != 0)


@pytest.mark.parametrize("key", [-1, 2**64])
def test_randk_refuses_keys_beyond_64_bits(key):
    with pytest.raises(ValueError, match="range"):
        RandK().encode(torch.ones(10), key=key)


@pytest.mark.parametrize(
    ("n", "k"),
    [(0, 0), (1, 1), (10, 0), (10, 3), (10, 5), (10, 6), (10, 10), (100_000, 100), (100_000, 70_000)],
)
def test_random_positions_are_k_sorted_distinct_positions_in_range(n, k):
    positions = random_positions(99, n, k)
    assert positions.size == k
    assert np.all(np.diff(positions) > 0)
    assert k == 0 or (positions[0] >= 0 and positions[-1] < n)


@pytest.mark.parametrize(("n", "k"), [(1000, 20), (40, 10), (40, 30)])
def test_random_positions_pick_every_position_equally_often(n, k):
    keys = 4000
    hits = np.zeros(n)
    for key in range(keys):
        hits[random_positions(key, n, k)] += 1
    expected = keys * k / n
    chi2 = float(((hits - expected) ** 2 / expected).sum())
    # χ² with about n − 1 degrees of freedom: mean n − 1, sd √(2(n − 1)); 6 sd is a real defect.
    assert chi2 < n - 1 + 6 * math.sqrt(2 * (n - 1))


@pytest.mark.parametrize("name", ["topk", "randk"])
def test_sparsifiers_are_biased_and_lossy_with_a_consensus_step_growing_with_the_ratio(name):
    small, large = COMPRESSORS.create(f"{name}:ratio=0.01"), COMPRESSORS.create(f"{name}:ratio=1")
    assert not (small.lossless or small.unbiased) and small.block == 0
    assert 0 < small.consensus_step < large.consensus_step == 1.0
