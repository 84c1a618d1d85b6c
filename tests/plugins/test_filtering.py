"""hide: only confidently correct samples hide, at most F·decay^e of them, never served; lr, steps follow."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mpi4py import MPI

from fedgossip.comm.traffic import Traffic
from fedgossip.errors import ConfigError
from fedgossip.local.batches import BatchStream
from fedgossip.local.flat import FlatParameters
from fedgossip.local.models import build_model
from fedgossip.local.optim import make_lr_schedule, make_optimizer
from fedgossip.local.trainer import LocalTrainer
from fedgossip.plugins.base import PLUGINS, PluginHost
from fedgossip.plugins.filtering import ImportanceFilter

torch.set_num_threads(1)

CLASSES = 4


def _blobs(n: int = 200, flip: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return well-separated Gaussian blobs, one per class, a share ``flip`` of them labelled as another.

    A linear model cannot fit a flipped label (its sample sits in another class's blob),
    so those are the samples it keeps mispredicting. Also returns the flipped positions.
    """
    rng = np.random.default_rng(seed)
    centers = 6.0 * np.eye(CLASSES, 8)
    y = rng.integers(0, CLASSES, n)
    x = centers[y] + rng.normal(0.0, 0.5, (n, 8))
    flipped = np.sort(rng.choice(n, int(flip * n), replace=False))
    y[flipped] = (y[flipped] + rng.integers(1, CLASSES, len(flipped))) % CLASSES
    return x.astype(np.float32), y.astype(np.int64), flipped


def _host(x: np.ndarray, y: np.ndarray, lr: float = 0.2, schedule: str = "constant") -> PluginHost:
    model = build_model("logreg", x.shape[1:], CLASSES, seed=0)
    flat = FlatParameters(model)
    optimizer = make_optimizer("sgd", model.parameters(), lr=lr)
    stream = BatchStream(x, y, batch_size=16, seed=(0, 0))
    trainer = LocalTrainer(model, flat, optimizer, make_lr_schedule(schedule, optimizer, 1000), stream)
    return PluginHost(
        comm=MPI.COMM_SELF,
        rank=0,
        neighbors=(),
        num_classes=CLASSES,
        model=model,
        params=flat,
        stream=stream,
        trainer=trainer,
        traffic=Traffic(),
        shard_x=x,
        shard_y=y,
        seed=0,
        rounds=10,
        device=torch.device("cpu"),
    )


def _started(
    x: np.ndarray, y: np.ndarray, lr: float = 0.2, **params
) -> tuple[ImportanceFilter, PluginHost, dict[int, dict]]:
    """Start a filter on a fresh host; also return its decisions, recorded at every epoch start."""
    host = _host(x, y, lr)
    plugin = ImportanceFilter(**params)
    plugin.start(host)
    decisions: dict[int, dict] = {}
    decide = host.stream.on_epoch_start

    def record(epoch: int) -> None:
        decide(epoch)
        decisions[epoch] = plugin.state_dict()

    host.stream.on_epoch_start = record
    return plugin, host, decisions


def _train_epochs(host: PluginHost, epochs: int) -> list[np.ndarray]:
    """Train one step at a time through ``epochs`` whole epochs; return the positions served in each."""
    stream = host.stream
    first = stream.epoch
    served: list[list[np.ndarray]] = [[] for _ in range(epochs)]
    while stream.epoch < first + epochs:
        epoch = stream.epoch - first
        host.trainer.run(1)
        served[epoch].append(stream.last_indices.numpy().copy())
    return [np.concatenate(batches) for batches in served]


def test_never_hides_a_mispredicted_or_unsure_sample():
    x, y, flipped = _blobs(300, flip=0.2)
    # warmup 2: scores from the first epoch's first batches come from a model that has learnt
    # nothing yet, which may call a flipped label right by chance (and that sample may then hide)
    # and a small lr: scaled by up to 2.5, a large one makes predictions swing from batch to batch
    _, host, decisions = _started(x, y, lr=0.05, fraction=0.6, threshold=0.6, warmup=2)
    _train_epochs(host, 6)
    hid_any = False
    for epoch, decision in decisions.items():
        hidden = decision["hidden"]
        hid_any |= len(hidden) > 0
        assert decision["correct"][hidden].all(), f"epoch {epoch} hid a mispredicted sample"
        assert (decision["confidence"][hidden] >= 0.6).all(), f"epoch {epoch} hid an unsure sample"
        assert not np.isin(hidden, flipped).any(), f"epoch {epoch} hid a sample with a flipped label"
    assert hid_any
    assert not decisions[0]["hidden"].size and not decisions[1]["hidden"].size  # warmup


@pytest.mark.parametrize("fraction, decay", [(0.5, 0.5), (0.3, 1.0), (0.0, 1.0)])
def test_hides_at_most_fraction_times_decay_and_exactly_that_when_all_are_easy(fraction, decay):
    x, y, _ = _blobs(200)
    _, host, decisions = _started(x, y, fraction=fraction, decay=decay, threshold=0.5, warmup=3)
    _train_epochs(host, 7)
    assert all(not decisions[epoch]["hidden"].size for epoch in range(3))
    for epoch in range(3, 7):
        budget = math.floor(fraction * decay ** (epoch - 3) * 200)
        # separable blobs: after warmup every sample is confidently correct, so the budget is filled
        assert len(decisions[epoch]["hidden"]) == budget
        assert decisions[epoch]["fraction"] == budget / 200


def test_hidden_samples_are_not_served_and_visible_ones_once_per_epoch():
    x, y, _ = _blobs(200)
    plugin, host, decisions = _started(x, y, fraction=0.4, threshold=0.5, warmup=2)
    served = _train_epochs(host, 5)
    for epoch in range(2, 5):
        hidden = decisions[epoch]["hidden"]
        assert len(hidden) > 0
        assert not np.isin(served[epoch], hidden).any()
        visible = np.setdiff1d(np.arange(200), hidden)
        np.testing.assert_array_equal(np.sort(served[epoch]), visible)  # each exactly once
        assert plugin.values()[0] == pytest.approx(len(decisions[4]["hidden"]) / 200)


def test_learning_rate_is_scaled_by_one_over_the_visible_share():
    x, y, _ = _blobs(200)
    host = _host(x, y, lr=0.2, schedule="cosine")
    plugin = ImportanceFilter(fraction=0.5, threshold=0.5, warmup=2)
    plugin.start(host)
    schedule, optimizer = host.trainer.schedule, host.trainer.optimizer
    for _ in range(4):
        _train_epochs(host, 1)
        host.stream.next_batch()  # draws the next epoch, which decides what it hides
        hidden = len(plugin.state_dict()["hidden"])
        factor = schedule.lr_lambdas[0](schedule.last_epoch)
        lr = optimizer.param_groups[0]["lr"]
        assert lr == pytest.approx(0.2 * factor / (1 - hidden / 200), rel=1e-9)
    assert hidden > 0


@pytest.mark.parametrize("steps", [1, 7, 10, 23])
def test_round_shrinks_to_the_visible_share_and_the_schedule_keeps_pace(steps):
    x, y, _ = _blobs(200)
    plugin, host, _ = _started(x, y, fraction=0.3, threshold=0.5, warmup=2)
    _train_epochs(host, 2)
    host.stream.next_batch()  # epoch 2 starts: 60 of 200 samples hide
    visible = host.stream.visible_samples
    assert visible == 140
    schedule = host.trainer.schedule
    before = schedule.last_epoch
    taken = plugin.before_round(1, steps)
    assert taken == max(1, math.ceil(steps * 7 / 10 - 1e-12))
    assert schedule.last_epoch == before + steps - taken
    host.trainer.run(taken)
    assert schedule.last_epoch == before + steps  # the round's steps, taken or skipped, all count
    trainer = host.trainer
    _, skipped, _, saved = plugin.values()
    assert skipped == steps - taken
    assert saved == pytest.approx(skipped * trainer.total_seconds / trainer.total_steps)
    assert plugin.before_round(2, 0) == 0


def test_nothing_hidden_leaves_the_round_and_lr_alone():
    x, y, _ = _blobs(100)
    plugin, host, _ = _started(x, y, warmup=5)
    _train_epochs(host, 2)
    assert plugin.before_round(1, 10) == 10
    assert host.trainer.lr_scale == 1.0
    assert plugin.values() == (0.0, 0.0, 0.0, 0.0)


def test_hidden_samples_are_rescored_every_rescore_epochs():
    x, y, _ = _blobs(200)
    _, host, decisions = _started(x, y, fraction=0.4, threshold=0.5, rescore=2, warmup=1)
    _train_epochs(host, 7)
    for epoch in range(2, 7):
        hidden_before = len(decisions[epoch - 1]["hidden"])
        rescored = decisions[epoch]["rescored"] - decisions[epoch - 1]["rescored"]
        expected = hidden_before if (epoch - 1) % 2 == 0 else 0
        assert rescored == expected, f"epoch {epoch}"
    assert decisions[6]["rescored"] > 0
    assert host.model.training  # rescoring ran in eval mode, and gave training mode back


def test_rescoring_unhides_a_sample_that_became_mispredicted():
    x, y, _ = _blobs(200)
    _, host, decisions = _started(x, y, fraction=0.4, threshold=0.5, rescore=1, warmup=2)
    _train_epochs(host, 2)
    host.stream.next_batch()  # epoch 2 decides
    target = int(decisions[2]["hidden"][0])
    labels = host.stream.full_batch()[1]
    labels[target] = (labels[target] + 1) % CLASSES  # the model, unchanged, now mispredicts it
    _train_epochs(host, 1)
    host.stream.next_batch()  # epoch 3 rescores the hidden samples before deciding
    assert not decisions[3]["correct"][target]
    assert target not in decisions[3]["hidden"]


def test_extra_samples_start_unscored_and_own_scores_survive():
    x, y, _ = _blobs(120)
    plugin, host, decisions = _started(x, y, fraction=0.5, threshold=0.5, warmup=2)
    _train_epochs(host, 3)
    own_loss = plugin.state_dict()["loss"]
    host.stream.set_extra(*_blobs(40, seed=1)[:2])
    host.stream.next_batch()  # epoch 3 starts over the 160 samples
    assert np.isinf(decisions[3]["loss"][120:]).all()
    np.testing.assert_array_equal(decisions[3]["loss"][:120], own_loss)
    assert len(decisions[3]["hidden"]) and (decisions[3]["hidden"] < 120).all()
    _train_epochs(host, 2)
    assert np.isfinite(plugin.state_dict()["loss"]).all()
    # other extra samples in the same positions: the count is unchanged, their scores are not theirs
    host.stream.set_extra(*_blobs(40, seed=2)[:2])
    host.stream.next_batch()
    assert np.isinf(decisions[5]["loss"][120:]).all()
    assert (decisions[5]["hidden"] < 120).all()


def test_restore_decides_nothing_and_the_restored_run_trains_the_same():
    x, y, _ = _blobs(100)
    plugin, host, _ = _started(x, y, fraction=0.3, threshold=0.5, warmup=2)
    _train_epochs(host, 3)
    plugin.before_round(1, 10)
    state = plugin.state_dict()
    restored = ImportanceFilter(fraction=0.3, threshold=0.5, warmup=2)
    fresh = _host(x, y)
    restored.restore(fresh, state)
    # the filter only hooks in: the stream and the trainer restore what it changed in them
    assert fresh.stream.visible_samples == 100 and fresh.trainer.lr_scale == 1.0
    fresh.stream.load_state_dict(host.stream.state_dict())
    fresh.trainer.load_state_dict(host.trainer.state_dict())
    fresh.trainer.optimizer.load_state_dict(host.trainer.optimizer.state_dict())
    fresh.trainer.schedule.load_state_dict(host.trainer.schedule.state_dict())
    fresh.model.load_state_dict(host.model.state_dict())
    assert fresh.stream.visible_samples == host.stream.visible_samples < 100
    assert restored.values()[:3] == plugin.values()[:3]
    for expected, served in zip(_train_epochs(host, 3), _train_epochs(fresh, 3), strict=True):
        np.testing.assert_array_equal(served, expected)
    assert torch.equal(fresh.params.flat, host.params.flat)
    with pytest.raises(KeyError, match="needs keys"):
        restored.load_state_dict({"loss": state["loss"]})


def test_start_refuses_hooks_another_plugin_holds():
    x, y, _ = _blobs(50)
    host = _host(x, y)
    ImportanceFilter().start(host)
    with pytest.raises(ConfigError, match="one filter at a time"):
        ImportanceFilter().start(host)


def test_spec_is_validated_through_the_registry_and_the_constructor():
    with pytest.raises(ConfigError, match="fraction"):
        PLUGINS.create("hide:fraction=1")
    plugin = PLUGINS.create("hide:fraction=0.3,decay=0.9")
    assert isinstance(plugin, ImportanceFilter)
    assert (plugin.fraction, plugin.decay, plugin.kind) == (0.3, 0.9, "filter")
    assert plugin.spec == "hide:fraction=0.3,threshold=0.7,decay=0.9,rescore=1,warmup=1"
    with pytest.raises(ConfigError) as caught:
        ImportanceFilter(fraction=1.0, decay=0.0, rescore=0)
    assert all(name in str(caught.value) for name in ("fraction", "decay", "rescore"))


_PLAIN = SimpleNamespace(name="dpsgd", exchanges_gradients=False)
_SYNC = SimpleNamespace(asynchronous=False)


@pytest.mark.parametrize(
    "algorithm, config, privacy, fix",
    [
        (SimpleNamespace(name="comp-ams", exchanges_gradients=True), _SYNC, None, "--algorithm"),
        (_PLAIN, _SYNC, SimpleNamespace(name="dp-sgd", level="sample"), "--dp dp-update"),
    ],
)
def test_check_refuses_what_breaks_the_filter_and_names_the_fix(algorithm, config, privacy, fix):
    with pytest.raises(ConfigError, match=fix):
        ImportanceFilter().check(algorithm, config, privacy)


def test_check_accepts_plain_rounds_and_node_level_privacy():
    ImportanceFilter().check(_PLAIN, _SYNC, SimpleNamespace(name="dp-update", level="node"))
