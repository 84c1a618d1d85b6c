"""BatchStream: every sample once per epoch, own generator, reshuffled each epoch, resumable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedgossip.errors import DataError
from fedgossip.local.batches import BatchStream


def _shard(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return samples whose single feature equals their label, so pairing can be checked."""
    y = np.arange(n, dtype=np.int64)
    return y.astype(np.float32).reshape(n, 1), y


def _epoch(stream: BatchStream) -> list[int]:
    labels = []
    for _ in range(stream.steps_per_epoch):
        _, yb = stream.next_batch()
        labels += yb.tolist()
    return labels


def test_every_sample_is_served_exactly_once_per_epoch():
    stream = BatchStream(*_shard(10), batch_size=3, seed=0)
    assert stream.steps_per_epoch == 4
    for epoch in range(3):
        assert stream.epoch == epoch
        sizes = []
        labels = []
        for _ in range(4):
            _, yb = stream.next_batch()
            sizes.append(len(yb))
            labels += yb.tolist()
        assert sizes == [3, 3, 3, 1]
        assert sorted(labels) == list(range(10))
    assert stream.epoch == 3


def test_samples_and_labels_stay_paired():
    stream = BatchStream(*_shard(20), batch_size=6, seed=1)
    for _ in range(10):
        xb, yb = stream.next_batch()
        assert xb.dtype == torch.float32 and yb.dtype == torch.int64
        assert torch.equal(xb[:, 0].long(), yb)


def test_the_order_is_reshuffled_every_epoch():
    stream = BatchStream(*_shard(50), batch_size=8, seed=0)
    first, second = _epoch(stream), _epoch(stream)
    assert sorted(first) == sorted(second) and first != second


def test_the_same_seed_gives_the_same_batches():
    a = BatchStream(*_shard(30), batch_size=7, seed=5)
    b = BatchStream(*_shard(30), batch_size=7, seed=5)
    assert [_epoch(a) for _ in range(3)] == [_epoch(b) for _ in range(3)]


def test_different_seeds_give_different_orders():
    orders = [_epoch(BatchStream(*_shard(50), batch_size=8, seed=seed)) for seed in (0, 1, 2)]
    assert len({tuple(order) for order in orders}) == 3


def test_run_seed_and_rank_pairs_give_every_rank_of_every_run_its_own_order():
    # the form the docstring recommends; seed + rank would give (0, 1) and (1, 0) the same order
    pairs = [(seed, rank) for seed in (0, 1) for rank in (0, 1, 2)]
    orders = [_epoch(BatchStream(*_shard(50), batch_size=8, seed=pair)) for pair in pairs]
    assert len({tuple(order) for order in orders}) == len(pairs)


def test_the_stream_does_not_touch_global_generators():
    np.random.seed(0)
    expected = np.random.random()
    np.random.seed(0)
    _epoch(BatchStream(*_shard(10), batch_size=3, seed=0))
    assert np.random.random() == expected


@pytest.mark.parametrize("batch_size,steps", [(3, 4), (5, 2), (10, 1), (11, 1), (1000, 1)])
def test_steps_per_epoch_rounds_up(batch_size, steps):
    assert BatchStream(*_shard(10), batch_size=batch_size, seed=0).steps_per_epoch == steps


def test_a_batch_larger_than_the_shard_is_the_whole_shard():
    stream = BatchStream(*_shard(6), batch_size=100, seed=0)
    for epoch in range(1, 3):
        _, yb = stream.next_batch()
        assert sorted(yb.tolist()) == list(range(6))
        assert stream.epoch == epoch


def test_full_batch_is_the_stored_order_and_does_not_advance():
    stream = BatchStream(*_shard(5), batch_size=2, seed=0)
    _, y = stream.full_batch()
    assert y.tolist() == [0, 1, 2, 3, 4]
    assert sorted(_epoch(stream)) == [0, 1, 2, 3, 4]  # the first epoch is still whole


def test_a_restored_stream_continues_with_the_same_batches():
    stream = BatchStream(*_shard(10), batch_size=3, seed=0)
    for _ in range(5):  # into the second epoch
        stream.next_batch()
    state = stream.state_dict()
    expected = [stream.next_batch()[1].tolist() for _ in range(6)]

    restored = BatchStream(*_shard(10), batch_size=3, seed=99)
    restored.load_state_dict(state)
    assert restored.epoch == 1
    assert [restored.next_batch()[1].tolist() for _ in range(6)] == expected


def test_bad_shards_are_refused_with_every_problem():
    with pytest.raises(DataError, match=r"3 samples but 2 labels.*batch size must be at least 1"):
        BatchStream(np.zeros((3, 1), np.float32), np.zeros(2, np.int64), batch_size=0, seed=0)
    with pytest.raises(DataError, match="the shard is empty"):
        BatchStream(np.zeros((0, 1), np.float32), np.zeros(0, np.int64), batch_size=4, seed=0)


# --- what training-time plugins change: hidden samples, extra samples, early epoch draws ---


def test_hidden_samples_are_left_out_of_the_next_epoch_only():
    stream = BatchStream(*_shard(10), batch_size=3, seed=0)
    stream.next_batch()  # an epoch under way is served to its end, hidden or not
    stream.hide(np.array([2, 5]))
    assert stream.visible_samples == 8 and stream.steps_per_epoch == 3
    rest = []
    while stream.epoch == 0:
        rest += stream.next_batch()[1].tolist()
    assert len(rest) == 7
    assert sorted(_epoch(stream)) == [0, 1, 3, 4, 6, 7, 8, 9]
    with pytest.raises(ValueError, match="at least one sample"):
        stream.hide(np.arange(10))


def test_extra_samples_follow_the_shard_and_end_the_epoch_under_way():
    stream = BatchStream(*_shard(6), batch_size=4, seed=0)
    stream.next_batch()
    stream.hide(np.array([1]))
    stream.set_extra(np.full((2, 1), 100, dtype=np.float32), np.array([100, 101]))
    # the cut epoch counts as done, hidden positions are cleared, and the next epoch serves all 8
    assert (stream.epoch, stream.generation, stream.num_samples, stream.visible_samples) == (1, 1, 8, 8)
    assert sorted(_epoch(stream)) == [0, 1, 2, 3, 4, 5, 100, 101]
    with pytest.raises(DataError, match="do not fit"):
        stream.set_extra(np.zeros((2, 3), dtype=np.float32), np.array([0, 1]))


def test_an_epoch_drawn_early_calls_the_hook_once_and_serves_the_same_order():
    calls = []
    early = BatchStream(*_shard(9), batch_size=4, seed=3)
    early.on_epoch_start = calls.append
    assert early.at_epoch_start
    early.begin_epoch()
    early.begin_epoch()  # already drawn: no second decision
    assert calls == [0] and not early.at_epoch_start
    lazy = BatchStream(*_shard(9), batch_size=4, seed=3)
    assert _epoch(early) == _epoch(lazy)
