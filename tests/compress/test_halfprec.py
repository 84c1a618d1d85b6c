"""fp16 and bf16: two little-endian bytes per value, exact on their grid, fp16 saturating."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from fedgossip.compress import COMPRESSORS
from fedgossip.compress.base import Packet
from fedgossip.compress.halfprec import FP16_MAX, BFloat16, Float16

FORMATS = {"fp16": torch.float16, "bf16": torch.bfloat16}


def _bits(x: torch.Tensor) -> np.ndarray:
    """Return the float32 bit patterns, so that -0.0 ≠ 0.0 and NaN == NaN in comparisons."""
    return x.numpy().view(np.uint32)


def _round_trip(name: str, x: torch.Tensor) -> torch.Tensor:
    compressor = COMPRESSORS.create(name)
    return compressor.decode(compressor.encode(x))


def _representable(name: str) -> torch.Tensor:
    """Return random values of the format's grid plus its edge cases, as float32."""
    dtype = FORMATS[name]
    info = torch.finfo(dtype)
    rng = np.random.default_rng(0)
    spread = rng.normal(size=5000) * np.exp(rng.uniform(-12, 12, size=5000))
    spread = spread[np.abs(spread) <= info.max]  # fp16 sends larger values as ±65504, tested below
    edges = [0.0, -0.0, 1.0, -2.0, info.max, -info.max, info.tiny, -info.tiny, info.smallest_normal / 4]
    if dtype == torch.bfloat16:
        edges += [np.inf, -np.inf]
    values = torch.tensor(np.concatenate([spread, edges]), dtype=torch.float64)
    return values.to(dtype).to(torch.float32)


@pytest.mark.parametrize("name", FORMATS)
def test_round_trip_is_exact_for_values_of_the_format(name):
    x = _representable(name)
    assert np.array_equal(_bits(_round_trip(name, x)), _bits(x))


@pytest.mark.parametrize("name", FORMATS)
def test_nan_stays_nan(name):
    decoded = _round_trip(name, torch.tensor([np.nan, 1.0, -np.nan]))
    assert torch.isnan(decoded[[0, 2]]).all() and decoded[1] == 1.0


@pytest.mark.parametrize("name", FORMATS)
def test_other_values_round_to_the_nearest_value_of_the_format(name):
    x = torch.from_numpy(np.random.default_rng(1).normal(size=10_000).astype(np.float32))
    assert torch.equal(_round_trip(name, x), x.to(FORMATS[name]).to(torch.float32))


@pytest.mark.parametrize(
    ("name", "exact", "halfway_to_odd", "halfway_to_even"),
    [
        # 1 + 2**-11 lies halfway between 1 and the next fp16 (1 + 2**-10): ties go to the even 1.
        ("fp16", 1.0, 1 + 2**-11, 1 + 3 * 2**-11),
        ("bf16", 1.0, 1 + 2**-8, 1 + 3 * 2**-8),
    ],
)
def test_ties_round_to_even(name, exact, halfway_to_odd, halfway_to_even):
    step = 2 * (halfway_to_odd - exact)
    decoded = _round_trip(name, torch.tensor([halfway_to_odd, halfway_to_even]))
    assert decoded.tolist() == [exact, exact + 2 * step]


@pytest.mark.parametrize("value", [65504.0, 65519.0, 65520.0, 1e5, 3.4e38, np.inf])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_fp16_saturates_at_65504_instead_of_overflowing_to_inf(value, sign):
    decoded = _round_trip("fp16", torch.tensor([sign * value], dtype=torch.float32))
    assert decoded.item() == sign * FP16_MAX


@pytest.mark.parametrize(
    ("name", "wire"), [("fp16", [0x00, 0x3C, 0x00, 0xC0]), ("bf16", [0x80, 0x3F, 0x00, 0xC0])]
)
def test_payload_is_two_little_endian_bytes_per_value(name, wire):
    packet = COMPRESSORS.create(name).encode(torch.tensor([1.0, -2.0]))
    assert packet.payload.dtype == np.uint8 and packet.payload.tolist() == wire


@pytest.mark.parametrize("cls", [Float16, BFloat16])
def test_decodes_a_read_only_payload_without_warnings(cls):
    compressor = cls()
    payload = np.frombuffer(compressor.encode(torch.tensor([0.5, 3.0])).payload.tobytes(), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        decoded = compressor.decode(Packet(count=2, payload=payload))
    assert decoded.tolist() == [0.5, 3.0]


@pytest.mark.parametrize("cls", [Float16, BFloat16])
def test_halfprec_is_neither_lossless_nor_unbiased_and_takes_the_full_consensus_step(cls):
    compressor = cls()
    assert (compressor.lossless, compressor.unbiased, compressor.block) == (False, False, 0)
    assert compressor.consensus_step == 1.0
    assert compressor.nbytes(1001) == 2002
