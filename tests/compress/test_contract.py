"""The Compressor contract, checked on every installed compressor with a few specs each."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedgossip.compress import COMPRESSORS
from fedgossip.compress.base import Packet
from fedgossip.errors import ConfigError, WireError

SPECS = [
    "none",
    "fp16",
    "bf16",
    "qsgd:bits=2",
    "qsgd:bits=5",
    "qsgd:bits=9,block=64",
    "uniform:bits=8",
    "uniform:bits=3,rounding=stochastic",
    "uniform:bits=1,block=8",
    "sign",
    "sign:block=64",
    "topk:ratio=0.01",
    "topk:ratio=0.1",
    "randk:ratio=0.3",
    "randk:ratio=1",
]
"""Specs every compressor is checked with; a new compressor must add at least one."""

# Empty, tiny, and sizes that are not multiples of 8, of the blocks above, or of 1/ratio.
COUNTS = [0, 1, 7, 8, 63, 65, 1000, 1031, *np.random.default_rng(7).integers(2, 5000, size=4).tolist()]


def _vector(n: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=n).astype(np.float32))


def _bits(x: torch.Tensor) -> np.ndarray:
    return x.numpy().view(np.uint32)


def test_every_installed_compressor_is_in_the_contract_specs():
    listed = {spec.partition(":")[0] for spec in SPECS}
    assert set(COMPRESSORS.available()) <= listed, "add a spec of the new compressor to SPECS"


@pytest.mark.parametrize("spec", SPECS)
def test_spec_names_an_installed_compressor(spec):
    COMPRESSORS.create(spec)  # a ConfigError here says why its entry point does not load


@pytest.mark.parametrize("n", COUNTS)
@pytest.mark.parametrize("spec", SPECS)
def test_nbytes_is_the_exact_payload_size(spec, n):
    compressor = COMPRESSORS.create(spec)
    packet = compressor.encode(_vector(n), key=5)
    assert packet.payload.dtype == np.uint8 and packet.payload.ndim == 1
    assert packet.payload.size == compressor.nbytes(n)
    assert packet.count == n and packet.block == compressor.block


@pytest.mark.parametrize("n", COUNTS)
@pytest.mark.parametrize("spec", SPECS)
def test_decode_returns_count_float32_values_and_fills_a_given_out_alike(spec, n):
    compressor = COMPRESSORS.create(spec)
    packet = compressor.encode(_vector(n), key=5)
    decoded = compressor.decode(packet)
    assert decoded.dtype == torch.float32 and decoded.shape == (n,)
    out = torch.full((n,), 123.0)  # garbage that decode must overwrite everywhere
    assert compressor.decode(packet, out) is out
    assert np.array_equal(_bits(out), _bits(decoded))


@pytest.mark.parametrize("spec", SPECS)
def test_encode_leaves_its_input_alone(spec):
    x = _vector(1031)
    kept = x.clone()
    COMPRESSORS.create(spec).encode(x, key=1)
    assert torch.equal(x, kept)


@pytest.mark.parametrize("spec", SPECS)
def test_same_input_and_key_give_the_same_payload(spec):
    compressor, again = COMPRESSORS.create(spec), COMPRESSORS.create(spec)
    x = _vector(1031)
    assert np.array_equal(
        compressor.encode(x, key=2**63 + 11).payload, again.encode(x, key=2**63 + 11).payload
    )


@pytest.mark.parametrize("spec", SPECS)
def test_a_zero_vector_decodes_to_zeros(spec):
    # Gossip averages decoded vectors: a code that made zeros out of nothing would move every model.
    compressor = COMPRESSORS.create(spec)
    assert torch.equal(compressor.decode(compressor.encode(torch.zeros(1031), key=3)), torch.zeros(1031))


def _claims_lossless(spec: str) -> bool:
    try:
        return COMPRESSORS.create(spec).lossless
    except ConfigError:  # kept, so that the failure shows in the tests, not as a collection error
        return True


@pytest.mark.parametrize("spec", [spec for spec in SPECS if _claims_lossless(spec)])
def test_lossless_compressors_are_exact(spec):
    compressor = COMPRESSORS.create(spec)
    x = torch.cat([_vector(1000), torch.tensor([0.0, -0.0, 1e-45, 3.4e38, float("inf"), float("-inf")])])
    assert np.array_equal(_bits(compressor.decode(compressor.encode(x))), _bits(x))


@pytest.mark.parametrize("spec", SPECS)
def test_consensus_step_is_in_zero_to_one(spec):
    assert 0 < COMPRESSORS.create(spec).consensus_step <= 1


@pytest.mark.parametrize("change", [-1, 1])
@pytest.mark.parametrize("n", [1, 7, 1031])
@pytest.mark.parametrize("spec", SPECS)
def test_a_payload_one_byte_off_is_a_wire_error(spec, n, change):
    compressor = COMPRESSORS.create(spec)
    payload = compressor.encode(_vector(n), key=5).payload
    wrong = payload[:-1] if change < 0 else np.append(payload, np.uint8(0))
    with pytest.raises(WireError, match=spec.partition(":")[0]):
        compressor.decode(Packet(count=n, payload=wrong, block=compressor.block))


@pytest.mark.parametrize("spec", SPECS)
def test_a_packet_with_another_block_size_is_a_wire_error(spec):
    compressor = COMPRESSORS.create(spec)
    packet = compressor.encode(_vector(1031), key=5)
    with pytest.raises(WireError, match="block size"):
        compressor.decode(Packet(count=1031, payload=packet.payload, block=packet.block + 8))


@pytest.mark.parametrize("spec", SPECS)
def test_a_read_only_payload_at_an_unaligned_address_decodes_alike(spec):
    # As if sliced from a received buffer at an odd offset: float32 fields are then unaligned,
    # and a buffer MPI filled may be read-only.
    compressor = COMPRESSORS.create(spec)
    packet = compressor.encode(_vector(1031), key=4)
    raw = np.frombuffer(b"\0" + packet.payload.tobytes(), dtype=np.uint8)[1:]
    moved = Packet(count=packet.count, payload=raw, block=packet.block)
    assert np.array_equal(_bits(compressor.decode(moved)), _bits(compressor.decode(packet)))
