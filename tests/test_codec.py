"""The codec's packet keys: independent across ranks, reproducible from the seed, resumable."""

import torch

from fedgossip.comm.codec import Codec
from fedgossip.compress import COMPRESSORS
from fedgossip.compress.wire import HEADER_SIZE


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
