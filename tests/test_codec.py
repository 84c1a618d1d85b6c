"""The codec: packet keys independent across ranks and resumable; non-finite values refused."""

import math
import struct
import zlib

import numpy as np
import pytest
import torch

from fedgossip.comm.codec import Codec
from fedgossip.compress import COMPRESSORS
from fedgossip.compress.base import Packet
from fedgossip.compress.wire import HEADER_SIZE
from fedgossip.errors import WireError

_CRC_OFFSET = 40  # of the CRC32 in wire.py's "<4sBBHQIIQQId" header


def _codec(rank: int, seed: int = 3) -> Codec:
    return Codec(COMPRESSORS.create("uniform:bits=2,rounding=stochastic"), rank, 500, seed)


def test_keys_differ_across_ranks_and_packets_but_repeat_with_the_seed():
    x = torch.linspace(-1, 1, 500)
    first, again, other_rank = _codec(0), _codec(0), _codec(1)
    packets = [first.pack(x)[0] for _ in range(2)]
    assert not (packets[0][HEADER_SIZE:] == packets[1][HEADER_SIZE:]).all()  # a fresh key per packet
    assert (again.pack(x)[0] == packets[0]).all()  # same seed and rank: the same packet
    assert not (other_rank.pack(x)[0][HEADER_SIZE:] == packets[0][HEADER_SIZE:]).all()  # ranks draw apart


def test_restored_key_state_continues_the_same_sequence():
    x = torch.linspace(-1, 1, 500)
    original = _codec(0)
    original.pack(x)
    saved = original.state_dict()
    expected = original.pack(x)[0]
    resumed = _codec(0, seed=99)
    resumed.load_state_dict(saved)
    assert (resumed.pack(x)[0] == expected).all()


def _patched(buffer: np.ndarray, offset: int, value: float) -> np.ndarray:
    """Return ``buffer`` with the float32 at payload ``offset`` set to ``value`` and the CRC32 recomputed."""
    damaged = buffer.copy()
    damaged[HEADER_SIZE + offset : HEADER_SIZE + offset + 4] = np.array([value], dtype="<f4").view(np.uint8)
    struct.pack_into("<I", damaged, _CRC_OFFSET, zlib.crc32(damaged[HEADER_SIZE:]))
    return damaged


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_neighbour_sending_non_finite_values_is_named(value):
    x = torch.linspace(-1, 1, 500)
    x[123] = value
    buffer, _ = Codec(COMPRESSORS.create("none"), 4, 500).pack(x, sequence=2)
    receiver = Codec(COMPRESSORS.create("none"), 0, 500)
    with pytest.raises(WireError, match=r"node 4 sent NaN or infinite values to node 0: .*lower --lr"):
        receiver.unpack(buffer, 4, 2)


def test_a_qsgd_scale_patched_to_infinity_is_refused_despite_a_valid_crc():
    compressor = COMPRESSORS.create("qsgd:bits=5,block=64")
    buffer, _ = Codec(compressor, 3, 500).pack(torch.linspace(-1, 1, 500))
    damaged = _patched(buffer, 4 * 2, math.inf)  # the norm of the third block
    receiver = Codec(compressor, 1, 500)
    with pytest.raises(WireError, match=r"node 3 sent NaN or infinite values.*diverged or its data is bad"):
        receiver.unpack(damaged, 3, out=torch.zeros(500))


def test_a_rank_decoding_its_own_non_finite_packet_says_its_model_diverged():
    codec = Codec(COMPRESSORS.create("none"), 2, 500)
    buffer, _ = codec.pack(torch.full((500,), math.nan))
    with pytest.raises(WireError, match=r"node 2 .*own packet.*this node's own model holds NaN/Inf"):
        codec.unpack(buffer, 2)


@pytest.mark.parametrize("spec", ["none", "qsgd:bits=5,block=64", "topk:ratio=0.1", "sign:block=64"])
def test_finite_packets_decode_into_out_as_the_compressor_does(spec):
    compressor = COMPRESSORS.create(spec)
    buffer, _ = Codec(compressor, 1, 500, seed=4).pack(torch.linspace(-3, 3, 500))
    out = torch.empty(500)
    assert Codec(compressor, 0, 500).unpack(buffer, 1, out=out) is out
    expected = compressor.decode(Packet(count=500, payload=buffer[HEADER_SIZE:], block=compressor.block))
    assert torch.equal(out, expected)
