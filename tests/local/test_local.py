"""LocalTrainer: loss goes down, losses are weighted by batch size, divergence is caught, steps stretch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn.functional import cross_entropy

from fedgossip.errors import FedGossipError
from fedgossip.local.batches import BatchStream
from fedgossip.local.evaluate import evaluate
from fedgossip.local.flat import FlatParameters
from fedgossip.local.models import build_model
from fedgossip.local.optim import make_lr_schedule, make_optimizer
from fedgossip.local.slowdown import StepStretcher
from fedgossip.local.trainer import LocalTrainer, TrainingDiverged

torch.set_num_threads(1)


def _blobs(n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Return two Gaussian blobs at (−2, −2) and (2, 2) with σ = 0.5: separable by a wide margin."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    x = rng.normal(0.0, 0.5, (n, 2)) + np.where(y[:, None] == 1, 2.0, -2.0)
    return x.astype(np.float32), y.astype(np.int64)


def _trainer(
    x: np.ndarray, y: np.ndarray, batch_size: int, lr: float, schedule: str = "constant", total: int = 1, **kw
) -> LocalTrainer:
    model = build_model("logreg", x.shape[1:], 2, seed=0)
    flat = FlatParameters(model)
    optimizer = make_optimizer("sgd", model.parameters(), lr=lr)
    stream = BatchStream(x, y, batch_size=batch_size, seed=0)
    return LocalTrainer(model, flat, optimizer, make_lr_schedule(schedule, optimizer, total), stream, **kw)


def test_loss_decreases_on_a_separable_problem():
    x, y = _blobs()
    trainer = _trainer(x, y, batch_size=16, lr=0.5)
    before = evaluate(trainer.model, x, y)
    first = trainer.run(20)
    second = trainer.run(20)
    after = evaluate(trainer.model, x, y)
    assert second.mean_loss < first.mean_loss
    assert after.loss < before.loss / 2
    assert after.accuracy == 1.0


def test_stats_count_samples_and_weight_losses_by_batch_size():
    x, y = _blobs(10)
    trainer = _trainer(x, y, batch_size=4, lr=0.0)  # lr = 0: every batch sees the same model
    stats = trainer.run(3)  # batches of 4, 4 and 2: one epoch
    assert (stats.steps, stats.samples) == (3, 10)
    # a sample-weighted sum over one epoch is the loss over the whole shard, which a plain mean
    # of the three batch means would not be (the last batch is half as large)
    assert stats.loss_sum == pytest.approx(10 * evaluate(trainer.model, x, y).loss, rel=1e-6)
    assert stats.mean_loss == pytest.approx(stats.loss_sum / 10)
    assert stats.seconds > 0


def test_gradients_stay_in_the_flat_vector():
    x, y = _blobs(10)
    trainer = _trainer(x, y, batch_size=4, lr=0.1)
    trainer.run(2)
    assert trainer.flat.is_bound()
    assert torch.count_nonzero(trainer.flat.flat_grad) > 0


def test_run_epochs_takes_whole_passes():
    x, y = _blobs(10)
    trainer = _trainer(x, y, batch_size=4, lr=0.1)
    stats = trainer.run_epochs(2)
    assert (stats.steps, stats.samples, trainer.stream.epoch) == (6, 20, 2)


def test_zero_steps_do_nothing():
    x, y = _blobs(10)
    trainer = _trainer(x, y, batch_size=4, lr=0.1)
    before = trainer.flat.flat.clone()
    stats = trainer.run(0)
    assert (stats.steps, stats.samples) == (0, 0) and math.isnan(stats.mean_loss)
    assert torch.equal(trainer.flat.flat, before)


def test_the_schedule_is_stepped_once_per_step():
    x, y = _blobs(10)
    trainer = _trainer(x, y, batch_size=4, lr=0.1, schedule="cosine", total=4)
    trainer.run(4)
    assert trainer.optimizer.param_groups[0]["lr"] == 0.0


def test_a_nan_loss_raises_and_names_the_step():
    calls = []

    def poisoned(logits, labels):
        calls.append(1)
        loss = cross_entropy(logits, labels)
        return loss * math.nan if len(calls) == 3 else loss

    x, y = _blobs(20)
    trainer = _trainer(x, y, batch_size=4, lr=0.1, loss_fn=poisoned)
    with pytest.raises(TrainingDiverged, match="NaN/Inf at local step 3; lower --lr") as caught:
        trainer.run(5)
    assert caught.value.step == 3
    assert isinstance(caught.value, FedGossipError)


def test_an_infinite_input_raises():
    x, y = _blobs(8)
    x[:] = np.inf
    with pytest.raises(TrainingDiverged, match="local step 1"):
        _trainer(x, y, batch_size=4, lr=0.1).run(2)


def test_gradient_hook_replaces_the_gradient_before_the_step():
    x, y = _blobs()
    seen = []

    def zero_it(grad):
        seen.append(float(grad.abs().sum()))
        grad.zero_()

    trainer = _trainer(x, y, batch_size=16, lr=0.5, gradient_hook=zero_it)
    before = trainer.flat.flat.clone()
    stats = trainer.run(3)
    assert len(seen) == 3 and min(seen) > 0  # called once per step with the real gradient
    assert torch.equal(trainer.flat.flat, before)  # the optimizer stepped with the zeroed one
    assert stats.steps == 3


class _FakeTime:
    """A clock that moves only when told to, and a sleep that moves it."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _timed_loss(fake: _FakeTime, seconds: float):
    """Return cross entropy that pretends to take ``seconds`` on the fake clock."""

    def loss_fn(logits, labels):
        fake.now += seconds
        return cross_entropy(logits, labels)

    return loss_fn


def test_a_stretcher_stretches_every_step_and_the_stats_count_it():
    fake = _FakeTime()
    x, y = _blobs(20)
    stretcher = StepStretcher(3.0, sleep=fake.sleep, clock=fake.clock)
    trainer = _trainer(x, y, batch_size=4, lr=0.1, loss_fn=_timed_loss(fake, 0.5), stretcher=stretcher)
    stats = trainer.run(4)
    assert fake.sleeps == [1.0] * 4  # once per step, (3 − 1) × the step's 0.5 s
    assert stats.stretched_seconds == 4.0
    assert stats.seconds == 4 * 0.5 + 4.0  # a slower rank's stretched time is compute time


def test_the_gradient_hook_time_is_neither_stretched_nor_counted():
    fake = _FakeTime()
    x, y = _blobs(20)
    stretcher = StepStretcher(2.0, sleep=fake.sleep, clock=fake.clock)

    def slow_hook(grad):
        fake.now += 10.0  # a long exchange with other ranks

    trainer = _trainer(
        x,
        y,
        batch_size=4,
        lr=0.1,
        loss_fn=_timed_loss(fake, 0.25),
        gradient_hook=slow_hook,
        stretcher=stretcher,
    )
    stats = trainer.run(3)
    assert fake.sleeps == [0.25] * 3  # only the compute was stretched
    assert (stats.stretched_seconds, stats.seconds) == (0.75, 3 * 0.25 + 0.75)
    assert fake.now == 3 * (0.25 + 10.0 + 0.25)  # the hook's time did pass, uncounted


def test_a_factor_of_one_never_sleeps():
    fake = _FakeTime()
    x, y = _blobs(20)
    stretcher = StepStretcher(1.0, sleep=fake.sleep, clock=fake.clock)
    trainer = _trainer(x, y, batch_size=4, lr=0.1, loss_fn=_timed_loss(fake, 0.5), stretcher=stretcher)
    stats = trainer.run(3)
    assert fake.sleeps == []
    assert (stats.stretched_seconds, stats.seconds) == (0.0, 1.5)


def test_without_a_stretcher_nothing_is_stretched():
    x, y = _blobs(10)
    stats = _trainer(x, y, batch_size=4, lr=0.1).run(2)
    assert stats.stretched_seconds == 0.0
