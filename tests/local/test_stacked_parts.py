"""The parts of a batched step: padded batches gathered at once, and learning rates without stepping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedgossip.local.batches import BatchStream
from fedgossip.local.flat import FlatParameters
from fedgossip.local.optim import make_lr_schedule, make_optimizer
from fedgossip.local.stacked_batches import StackedBatches
from fedgossip.local.stacked_rates import StackedRates
from fedgossip.local.trainer import LocalTrainer

SIZES = (10, 3, 7, 16)  # one shard below the batch size, epochs ending at different steps
BATCH = 4


def _streams() -> list[BatchStream]:
    streams = []
    for node, size in enumerate(SIZES):
        x = (np.arange(size * 2, dtype=np.float32).reshape(size, 2) + 1000 * node).astype(np.float32)
        streams.append(BatchStream(x, np.arange(size) % 3, BATCH, seed=[5, node]))
    return streams


def test_stacked_batches_are_each_streams_own_next_batch_padded_and_masked():
    stacked, alone = StackedBatches(_streams()), _streams()
    padded_steps = 0
    for step in range(9):
        nodes = [0, 1, 2, 3] if step % 3 else [1, 3]  # not every node steps every time
        batch = stacked.next(nodes)
        for row, node in enumerate(nodes):
            x, y = alone[node].next_batch()
            size = int(batch.sizes[row])
            assert size == len(y)
            torch.testing.assert_close(batch.x[row, :size], x, rtol=0, atol=0)
            torch.testing.assert_close(batch.y[row, :size], y, rtol=0, atol=0)
            assert torch.equal(stacked.streams[node].last_indices, alone[node].last_indices)
            if batch.mask is not None:
                assert batch.mask[row].tolist() == [1.0] * size + [0.0] * (batch.x.shape[1] - size)
                # padding is a sample of the node's own: finite, and from its shard
                assert bool((batch.x[row, size:] // 1000 == node).all())
        if batch.mask is None:
            assert bool((batch.sizes == batch.x.shape[1]).all())
        else:
            padded_steps += 1
    assert padded_steps > 0, "no step had unequal batches: the padded path went untested"


def test_stacked_batches_follow_samples_a_plugin_appended():
    streams = _streams()
    stacked = StackedBatches(streams)
    stacked.next([0, 1])
    extra = np.full((5, 2), -7.0, dtype=np.float32)
    streams[1].set_extra(extra, np.zeros(5, dtype=np.int64))  # the copy must be rebuilt
    seen = torch.cat([stacked.next([1]).x[0] for _ in range(4)])
    assert bool((seen == -7.0).any()), "the appended samples were never served"


def _trainer(schedule: str, lr: float = 0.1):
    module = torch.nn.Linear(2, 3)
    optimizer = make_optimizer("sgd", module.parameters(), lr)
    stream = BatchStream(np.zeros((4, 2), np.float32), np.zeros(4, np.int64), 2, seed=0)
    if schedule == "step":  # not a LambdaLR: no closed form, stepped as before
        built = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
    else:
        built = make_lr_schedule(schedule, optimizer, 12)
    return LocalTrainer(module, FlatParameters(module), optimizer, built, stream)


@pytest.mark.filterwarnings("ignore:Detected call of")  # the batched run steps its own optimizer copy
@pytest.mark.parametrize("schedule", ["cosine", "constant", "step"])
def test_rates_are_what_stepping_each_schedule_gives_and_the_schedules_end_alike(schedule):
    stepped, stacked = (
        [_trainer(schedule, lr) for lr in (0.1, 0.3)],
        [_trainer(schedule, lr) for lr in (0.1, 0.3)],
    )
    rates = StackedRates(stacked, torch.device("cpu"))
    for step in range(9):
        nodes = [0, 1] if step % 4 else [1]
        expected = [stepped[node].optimizer.param_groups[0]["lr"] for node in nodes]
        assert rates.rates(nodes).tolist() == expected  # exactly: the same expression
        for node in nodes:
            stepped[node].optimizer.step()
            stepped[node].schedule.step()
        rates.stepped(nodes)
    rates.settle()
    for a, b in zip(stepped, stacked, strict=True):
        assert b.schedule.state_dict() == a.schedule.state_dict()
        assert b.optimizer.param_groups[0]["lr"] == a.optimizer.param_groups[0]["lr"]
