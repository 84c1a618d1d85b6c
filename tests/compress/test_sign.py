"""``sign``: one bit per value, each block decoding to ± its mean |x|, and its payload."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedgossip.compress.base import COMPRESSORS, Packet
from fedgossip.compress.sign import Sign
from fedgossip.errors import ConfigError


def _vector(n: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(n).astype(np.float32))


@pytest.mark.parametrize(("n", "block"), [(1000, 8), (1037, 64), (13, 1024), (4096, 1024)])
def test_magnitudes_are_the_block_mean_abs_and_signs_match(n, block):
    x = _vector(n).numpy()
    x[::9] = 0.0
    y = Sign(block=block).decode(Sign(block=block).encode(torch.from_numpy(x))).numpy()
    for start in range(0, n, block):
        part, decoded = x[start : start + block], y[start : start + block]
        np.testing.assert_allclose(np.abs(decoded), np.abs(part).mean(), rtol=1e-5)
        np.testing.assert_array_equal(decoded < 0, part < 0)  # zero counts as positive


def test_zero_block_decodes_to_zeros():
    x = torch.zeros(24)
    x[8:16] = _vector(8)
    y = Sign(block=8).decode(Sign(block=8).encode(x))
    assert torch.equal(y[:8], torch.zeros(8)) and torch.equal(y[16:], torch.zeros(8))


@pytest.mark.parametrize("block", [8, 24, 1024])
@pytest.mark.parametrize("n", [0, 1, 7, 9, 100, 1025, 3001])
def test_payload_size_is_nbytes(block, n):
    code = Sign(block=block)
    packet = code.encode(_vector(n))
    assert packet.payload.size == code.nbytes(n) == 4 * -(-n // block) + -(-n // 8)
    assert (packet.count, packet.block) == (n, block)


def test_payload_is_little_endian_scales_then_sign_bits():
    x = _vector(20)
    payload = Sign(block=8).encode(x).payload
    scales = [np.abs(x.numpy()[s : s + 8]).mean() for s in (0, 8, 16)]
    np.testing.assert_allclose(payload[:12].view("<f4"), scales, rtol=1e-6)
    np.testing.assert_array_equal(np.unpackbits(payload[12:], bitorder="little")[:20], x.numpy() < 0)


def test_encoding_ignores_the_key():
    x = _vector(100)
    assert np.array_equal(Sign().encode(x, key=1).payload, Sign().encode(x, key=2).payload)


def test_decode_fills_the_given_tensor():
    code = Sign(block=16)
    out = torch.empty(100)
    assert code.decode(code.encode(_vector(100)), out=out) is out
    assert torch.all(out != 0)


def test_sign_is_biased():
    assert not Sign().unbiased


def test_non_finite_scales_decode_to_non_finite_values():
    code = Sign(block=8)
    payload = code.encode(_vector(16)).payload
    payload[:8].view("<f4")[:] = [np.inf, np.nan]
    y = code.decode(Packet(count=16, payload=payload, block=8))
    assert torch.all(torch.isinf(y[:8])) and torch.all(torch.isnan(y[8:]))


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (12, "block=12: must be a multiple of 8.*try block=16"),
        (0, "block=.*must be >= 8"),
        (4, "must be >= 8"),
    ],
)
def test_constructor_refuses_bad_block_sizes(block, message):
    with pytest.raises(ConfigError, match=message):
        Sign(block=block)


@pytest.mark.parametrize(
    ("spec", "message"), [("sign:block=12", "multiple of 8"), ("sign:bits=1", "unknown")]
)
def test_registry_refuses_bad_specs(spec, message):
    with pytest.raises(ConfigError, match=message):
        COMPRESSORS.create(spec)


def test_consensus_step_is_one():
    # the scaled sign always contracts (see Sign.consensus_step), and γ = 1 trained best
    assert Sign().consensus_step == 1.0
