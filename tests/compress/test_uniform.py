"""``uniform``: min–max quantization, its error bounds, unbiased stochastic rounding, and its payload."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedgossip.compress.base import COMPRESSORS
from fedgossip.compress.uniform import Uniform
from fedgossip.errors import ConfigError


def _vector(n: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(n).astype(np.float32) * 3)


def _block_steps(x: np.ndarray, block: int, bits: int) -> np.ndarray:
    """Return the step of the block each value belongs to: (max − min) / (2**bits − 1)."""
    steps = np.empty_like(x)
    for start in range(0, x.size, block):
        part = x[start : start + block]
        steps[start : start + block] = (part.max() - part.min()) / ((1 << bits) - 1)
    return steps


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize(("n", "block"), [(1000, 64), (1037, 128), (13, 8), (1, 1024)])
def test_nearest_error_is_at_most_half_a_step(bits, n, block):
    x = _vector(n, seed=bits)
    code = Uniform(bits=bits, block=block)
    y = code.decode(code.encode(x))
    steps = _block_steps(x.numpy(), block, bits)
    error = np.abs(y.numpy() - x.numpy())
    # Slack: a few float32 roundings of values of size |x| ≤ ~15.
    assert np.all(error <= steps / 2 + 1e-5 * (1 + np.abs(x.numpy())))


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_stochastic_rounding_is_unbiased(bits):
    x = _vector(24, seed=bits)
    code = Uniform(bits=bits, block=8, rounding="stochastic")
    draws = 2000
    mean = torch.stack([code.decode(code.encode(x, key=k)) for k in range(draws)]).mean(0).numpy()
    # One draw is lo + step·(floor(t) or ceil(t)): variance ≤ step²/4; allow 5 standard errors.
    steps = _block_steps(x.numpy(), 8, bits)
    bound = 5 * np.sqrt(steps**2 / 4 / draws) + 1e-5
    assert np.all(np.abs(mean - x.numpy()) <= bound)


@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
def test_stochastic_rounding_stays_on_the_two_nearest_levels(rounding):
    x = _vector(1000)
    code = Uniform(bits=3, block=64, rounding=rounding)
    y = code.decode(code.encode(x, key=7)).numpy()
    steps = _block_steps(x.numpy(), 64, 3)
    assert np.all(np.abs(y - x.numpy()) <= steps * (1 + 1e-5) + 1e-6)


@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
@pytest.mark.parametrize("bits", [1, 3, 8])
@pytest.mark.parametrize("value", [0.0, -2.5, 1e-30, 3.0e38])
def test_constant_blocks_decode_exactly(rounding, bits, value):
    x = torch.full((40,), value)
    x[16:] = 1.25  # a second constant block, and a ragged last block
    code = Uniform(bits=bits, block=16, rounding=rounding)
    assert torch.equal(code.decode(code.encode(x, key=3)), x)


@pytest.mark.parametrize(("bits", "block"), [(1, 8), (3, 16), (4, 1024), (7, 24), (8, 8)])
@pytest.mark.parametrize("n", [0, 1, 7, 9, 100, 1025, 3001])
def test_payload_size_is_nbytes(bits, block, n):
    code = Uniform(bits=bits, block=block)
    packet = code.encode(_vector(n))
    blocks = -(-n // block)
    assert packet.payload.dtype == np.uint8
    assert packet.payload.size == code.nbytes(n) == 8 * blocks + -(-n * bits // 8)
    assert (packet.count, packet.block) == (n, block)


def test_payload_starts_with_little_endian_lo_and_step_of_each_block():
    x = _vector(20)
    packet = Uniform(bits=4, block=8).encode(x)
    head = packet.payload[:24].view("<f4")
    blocks = [x.numpy()[s : s + 8] for s in (0, 8, 16)]
    np.testing.assert_array_equal(head[:3], [b.min() for b in blocks])
    np.testing.assert_allclose(head[3:], [(b.max() - b.min()) / 15 for b in blocks], rtol=1e-6)


def test_same_key_gives_the_same_packet_and_another_key_another():
    code = Uniform(bits=2, block=64, rounding="stochastic")
    x = _vector(500)
    first = code.encode(x, key=11).payload
    assert np.array_equal(first, code.encode(x, key=11).payload)
    assert not np.array_equal(first, code.encode(x, key=12).payload)


def test_decode_fills_the_given_tensor():
    code = Uniform(bits=5, block=32)
    x = _vector(100)
    out = torch.empty(100)
    result = code.decode(code.encode(x), out=out)
    assert result is out
    assert torch.allclose(out, x, atol=0.5)


def test_unbiased_only_with_stochastic_rounding():
    assert not Uniform(rounding="nearest").unbiased
    assert Uniform(rounding="stochastic").unbiased


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bits": 0}, "bits=.*must be >= 1"),
        ({"bits": 9}, "bits=.*must be .*<= 8"),
        ({"block": 12}, "block=12: must be a multiple of 8.*try block=16"),
        ({"block": 0}, "block=.*must be >= 8"),
        ({"rounding": "up"}, "rounding=.*must be one of nearest, stochastic"),
    ],
)
def test_constructor_refuses_bad_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Uniform(**kwargs)


def test_constructor_reports_every_problem_at_once():
    with pytest.raises(ConfigError, match=r"bits=.*block=20"):
        Uniform(bits=9, block=20)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("uniform:bits=9", "bits='9'"), ("uniform:block=12", "multiple of 8"), ("uniform:block=0", "block='0'")],
)
def test_registry_refuses_bad_specs(spec, message):
    with pytest.raises(ConfigError, match=message):
        COMPRESSORS.create(spec)


@pytest.mark.parametrize("bits", range(1, 9))
def test_consensus_step_is_one_from_2_bits_and_smaller_at_1(bits):
    assert Uniform(bits=bits).consensus_step == (0.5 if bits == 1 else 1.0)
