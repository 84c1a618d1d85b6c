"""``qsgd``: unbiased, within QSGD's variance bound, decoding only to signed levels, and its payload."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fedgossip.compress.base import COMPRESSORS
from fedgossip.compress.qsgd import Qsgd
from fedgossip.errors import ConfigError


def _vector(n: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(n).astype(np.float32))


def _levels(bits: int) -> int:
    # s: one of the bits is the sign, the others the level.
    return (1 << (bits - 1)) - 1


def _draws(code: Qsgd, x: torch.Tensor, count: int) -> np.ndarray:
    return torch.stack([code.decode(code.encode(x, key=k)) for k in range(count)]).numpy()


@pytest.mark.parametrize("bits", [2, 3, 5, 9])
def test_qsgd_is_unbiased(bits):
    x = _vector(20, seed=bits)
    block, draws = 8, 2000
    mean = _draws(Qsgd(bits=bits, block=block), x, draws).mean(0)
    # A draw is sign·(floor(t) or ceil(t))·‖v‖/s: variance ≤ (‖v‖/s)²/4 per value; allow 5 standard errors.
    norms = np.repeat([np.linalg.norm(x.numpy()[s : s + block]) for s in range(0, 20, block)], block)[:20]
    bound = 5 * np.sqrt((norms / _levels(bits)) ** 2 / 4 / draws) + 1e-6
    assert np.all(np.abs(mean - x.numpy()) <= bound)


@pytest.mark.parametrize("bits", [2, 3, 4, 9])
@pytest.mark.parametrize("block", [8, 64])
def test_variance_is_within_lemma_3_1(bits, block):
    # Alistarh et al. 2017, Lemma 3.1: E‖Q(v) − v‖² ≤ min(n/s², √n/s)·‖v‖² for a block of n values.
    x = _vector(block, seed=bits)
    s = _levels(bits)
    squared_errors = ((_draws(Qsgd(bits=bits, block=block), x, 400) - x.numpy()) ** 2).sum(1)
    bound = min(block / s**2, math.sqrt(block) / s) * float(x.square().sum())
    # Each squared error is at most n·(‖v‖/s)²·(1/4 + …); 400 draws estimate the mean within
    # a few percent, and the lemma's bound is not tight for Gaussian blocks: 10% slack is ample.
    assert squared_errors.mean() <= 1.1 * bound
    assert Qsgd(bits=bits, block=block).variance_bound == pytest.approx(bound / float(x.square().sum()))


@pytest.mark.parametrize("bits", [2, 5, 9])
def test_zero_vector_decodes_to_zeros(bits):
    code = Qsgd(bits=bits, block=16)
    x = torch.zeros(50)
    x[16:32] = _vector(16)  # a zero block between non-zero ones, and a ragged zero tail
    y = code.decode(code.encode(x, key=5))
    assert torch.equal(y[:16], torch.zeros(16)) and torch.equal(y[32:], torch.zeros(18))
    assert torch.equal(code.decode(code.encode(torch.zeros(33))), torch.zeros(33))


@pytest.mark.parametrize("bits", [2, 4, 9])
def test_values_decode_to_signed_multiples_of_norm_over_s(bits):
    block = 32
    x = _vector(100, seed=bits)
    y = Qsgd(bits=bits, block=block).decode(Qsgd(bits=bits, block=block).encode(x, key=1)).numpy()
    s = _levels(bits)
    for start in range(0, 100, block):
        part, decoded = x.numpy()[start : start + block], y[start : start + block]
        unit = np.linalg.norm(part) / s
        levels = decoded / unit
        np.testing.assert_allclose(levels, np.round(levels), atol=1e-3)
        assert np.all(np.abs(np.round(levels)) <= s)
        assert np.all((decoded == 0) | (np.sign(decoded) == np.sign(part)))
        # Stochastic rounding only moves to a neighbouring level.
        assert np.all(np.abs(decoded - part) <= unit * (1 + 1e-4))


@pytest.mark.parametrize(("bits", "block"), [(2, 8), (5, 512), (6, 24), (9, 8)])
@pytest.mark.parametrize("n", [0, 1, 7, 9, 100, 513, 3001])
def test_payload_size_is_nbytes(bits, block, n):
    code = Qsgd(bits=bits, block=block)
    packet = code.encode(_vector(n))
    assert packet.payload.size == code.nbytes(n) == 4 * -(-n // block) + -(-n // 8) + -(-n * (bits - 1) // 8)
    assert (packet.count, packet.block) == (n, block)


@pytest.mark.parametrize("bits", range(2, 10))
def test_bits_count_the_sign_so_a_vector_costs_bits_a_value_and_its_norms(bits):
    # A user reads qsgd:bits=4 as 4 bits a value on the wire, not 4 of level and one more of sign.
    n, block = 4096, 512
    code = Qsgd(bits=bits, block=block)
    assert code.encode(_vector(n)).payload.size == n * bits // 8 + 4 * (n // block)


def test_two_bits_are_ternary():
    x = _vector(64)
    y = Qsgd(bits=2, block=64).decode(Qsgd(bits=2, block=64).encode(x, key=3)).numpy()
    assert set(np.unique(np.round(y / np.linalg.norm(x.numpy()), 5))) <= {-1.0, 0.0, 1.0}


def test_payload_starts_with_little_endian_norms_then_sign_bits():
    x = _vector(20)
    payload = Qsgd(bits=4, block=8).encode(x).payload
    norms = [np.linalg.norm(x.numpy()[s : s + 8]) for s in (0, 8, 16)]
    np.testing.assert_allclose(payload[:12].view("<f4"), norms, rtol=1e-6)
    np.testing.assert_array_equal(np.unpackbits(payload[12:15], bitorder="little")[:20], x.numpy() < 0)


def test_same_key_gives_the_same_packet_and_another_key_another():
    code = Qsgd(bits=2, block=64)
    x = _vector(500)
    first = code.encode(x, key=11).payload
    assert np.array_equal(first, code.encode(x, key=11).payload)
    assert not np.array_equal(first, code.encode(x, key=12).payload)


def test_decode_fills_the_given_tensor():
    code = Qsgd(bits=6, block=64)
    x = _vector(100)
    out = torch.empty(100)
    assert code.decode(code.encode(x), out=out) is out
    assert torch.allclose(out, x, atol=0.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bits": 1}, "bits=.*must be >= 2"),
        ({"bits": 10}, "bits=.*must be .*<= 9"),
        ({"block": 12}, "block=12: must be a multiple of 8.*try block=16"),
        ({"block": 0}, "block=.*must be >= 8"),
    ],
)
def test_constructor_refuses_bad_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Qsgd(**kwargs)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("qsgd:bits=10", "bits='10'"), ("qsgd:bits=1", "bits='1'"), ("qsgd:block=12", "multiple of 8")],
)
def test_registry_refuses_bad_specs(spec, message):
    with pytest.raises(ConfigError, match=message):
        COMPRESSORS.create(spec)


def test_registry_builds_the_defaults():
    code = COMPRESSORS.create("qsgd")
    assert (code.bits, code.block, code.unbiased, code.spec) == (5, 512, True, "qsgd:bits=5,block=512")


@pytest.mark.parametrize("bits", range(2, 10))
def test_consensus_step_is_the_contraction_of_scaled_qsgd(bits):
    compressor = Qsgd(bits=bits)
    s, n = _levels(bits), compressor.block
    assert compressor.consensus_step == pytest.approx(1 / (1 + min(n / s**2, n**0.5 / s)))
    assert 0 < compressor.consensus_step < 1
