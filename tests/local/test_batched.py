"""BatchedTraining: co-hosted nodes stepped as one computation end where their own LocalTrainer runs would.

Every comparison builds two identical groups of trainers, runs one node by node and the
other batched, and compares each node's state. Parameters agree to ATOL, not bit for bit:
the vmapped forward and backward multiply batched matrices, whose float sums run in another
order than one node's matmul, so each step's gradient moves by about one ulp (~6e-8 here)
and momentum carries that over the steps.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.functional import cross_entropy

from fedgossip.errors import ConfigError
from fedgossip.local.batched import BatchedTraining, batchable
from fedgossip.local.batches import BatchStream
from fedgossip.local.correction import UpdateCorrection
from fedgossip.local.flat import FlatParameters
from fedgossip.local.models import build_model
from fedgossip.local.optim import make_lr_schedule, make_optimizer
from fedgossip.local.slowdown import StepStretcher
from fedgossip.local.trainer import LocalTrainer, TrainingDiverged

torch.set_num_threads(1)

ATOL = 1e-5
FEATURES, CLASSES, BATCH = 64, 10, 8
SIZES = (40, 40, 37, 53, 29, 64)  # shards of different sizes: epochs end, with short batches, at other steps
TOTAL_STEPS = 30  # the cosine schedule's length: the 21 steps of three rounds of 7 see it fall

OPTIMIZERS = {
    "sgd-momentum": lambda params: make_optimizer("sgd", params, 0.05, momentum=0.9, weight_decay=1e-3),
    "sgd-plain": lambda params: make_optimizer("sgd", params, 0.1),
    "sgd-nesterov": lambda params: torch.optim.SGD(
        params, 0.05, momentum=0.9, nesterov=True, weight_decay=1e-3, foreach=False
    ),
    "sgd-dampening": lambda params: torch.optim.SGD(
        params, 0.05, momentum=0.8, dampening=0.5, maximize=False
    ),
    "adam": lambda params: make_optimizer("adam:beta1=0.8,beta2=0.99", params, 0.01, weight_decay=1e-3),
    "amsgrad": lambda params: make_optimizer("amsgrad", params, 0.01),
    "adamw": lambda params: torch.optim.AdamW(params, 0.01, weight_decay=0.05, foreach=False),
}


def _trainer(
    node: int, size: int, model: str = "logreg", optimizer: str = "sgd-momentum", **kw
) -> LocalTrainer:
    """Build a node's trainer as run/assemble.py does, its shard and data order its own.

    The initial weights differ by node too (assemble gives every node the run seed), so a
    batched step that mixed up two nodes' rows could not go unseen.
    """
    rng = np.random.default_rng([7, node])
    y = rng.integers(0, CLASSES, size)
    x = (rng.normal(size=(size, FEATURES)) + y[:, None] % 3).astype(np.float32)
    module = build_model(model, (FEATURES,), CLASSES, seed=node)
    flat = FlatParameters(module)
    stream = BatchStream(x, y, BATCH, seed=[0, node])
    built = OPTIMIZERS[optimizer](module.parameters())
    schedule = make_lr_schedule("cosine", built, TOTAL_STEPS)
    return LocalTrainer(module, flat, built, schedule, stream, **kw)


def _group(**kw) -> list[LocalTrainer]:
    return [_trainer(node, size, **kw) for node, size in enumerate(SIZES)]


def _assert_same_nodes(alone: list[LocalTrainer], batched: list[LocalTrainer]) -> None:
    """Assert every node of ``batched`` is where the same node of ``alone`` is, up to float rounding."""
    for node, (a, b) in enumerate(zip(alone, batched, strict=True)):
        torch.testing.assert_close(b.flat.flat, a.flat.flat, atol=ATOL, rtol=0, msg=f"node {node} weights")
        torch.testing.assert_close(b.flat.flat_grad, a.flat.flat_grad, atol=ATOL, rtol=0)
        assert b.flat.is_bound(), "the batched write must land in the vector the model's parameters view"
        for p, q in zip(a.flat.params, b.flat.params, strict=True):
            ours, theirs = b.optimizer.state.get(q, {}), a.optimizer.state.get(p, {})
            assert ours.keys() == theirs.keys(), f"node {node} optimizer state keys"
            for key, value in theirs.items():
                tolerance = 0 if key == "step" else ATOL
                torch.testing.assert_close(ours[key], value, atol=tolerance, rtol=0, msg=f"node {node} {key}")
        assert b.schedule.state_dict() == a.schedule.state_dict()
        assert b.optimizer.param_groups[0]["lr"] == a.optimizer.param_groups[0]["lr"]
        ours, theirs = b.stream.state_dict(), a.stream.state_dict()
        assert ours["rng"] == theirs["rng"]
        assert (ours["epoch"], ours["position"]) == (theirs["epoch"], theirs["position"])
        assert (ours["order"] is None) == (theirs["order"] is None)
        if theirs["order"] is not None:
            np.testing.assert_array_equal(ours["order"], theirs["order"])
        torch.testing.assert_close(b.stream.last_indices, a.stream.last_indices, atol=0, rtol=0)
        assert b.total_steps == a.total_steps


def _assert_same_stats(alone, batched) -> None:
    for a, b in zip(alone, batched, strict=True):
        assert (b.steps, b.samples) == (a.steps, a.samples)
        assert b.loss_sum == pytest.approx(a.loss_sum, rel=1e-5)


@pytest.mark.filterwarnings("error")  # no scheduler warning either: the batched step counts as a step
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("model", ["logreg", "mlp:hidden=16"])
def test_batched_rounds_match_per_node_runs(model, optimizer):
    alone, together = _group(model=model, optimizer=optimizer), _group(model=model, optimizer=optimizer)
    batched = BatchedTraining(together)
    for _ in range(3):
        expected = [trainer.run(7) for trainer in alone]
        _assert_same_stats(expected, batched.run(7))
    _assert_same_nodes(alone, together)


def test_batched_steps_move_the_model():
    """Guard the comparisons above against a step that changes nothing: training lowers the loss."""
    group = _group(model="mlp:hidden=16")
    batched = BatchedTraining(group)
    first = sum(stats.mean_loss for stats in batched.run(5))
    for _ in range(4):
        batched.run(5)
    assert sum(stats.mean_loss for stats in batched.run(5)) < first * 0.9


def test_unequal_step_counts_match_per_node_runs():
    counts = [0, 3, 7, 1, 5, 2]
    alone, together = _group(model="mlp:hidden=16"), _group(model="mlp:hidden=16")
    untouched = together[0].flat.flat.clone()
    expected = [trainer.run(count) for trainer, count in zip(alone, counts, strict=True)]
    stats = BatchedTraining(together).run(counts)
    _assert_same_stats(expected, stats)
    _assert_same_nodes(alone, together)
    assert torch.equal(together[0].flat.flat, untouched)
    assert (stats[0].steps, stats[0].samples, stats[0].loss_sum, stats[0].seconds) == (0, 0, 0.0, 0.0)


@pytest.mark.parametrize("optimizer", ["sgd-momentum", "amsgrad"])
def test_per_node_and_batched_rounds_mix(optimizer):
    """State a per-node round left is picked up by a batched one, and the other way round."""
    alone, together = _group(optimizer=optimizer), _group(optimizer=optimizer)
    for trainer in alone:
        trainer.run(3)
        trainer.run(5)
        trainer.run(2)
    for trainer in together:
        trainer.run(3)
    BatchedTraining(together).run(5)
    for trainer in together:
        trainer.run(2)
    _assert_same_nodes(alone, together)


def test_seconds_are_shared_by_samples():
    group = _group()
    stats = BatchedTraining(group).run(6)
    rates = [s.seconds / s.samples for s in stats]
    assert all(rate > 0 for rate in rates)
    assert max(rates) == pytest.approx(min(rates))
    assert [trainer.total_seconds for trainer in group] == [s.seconds for s in stats]
    assert [trainer.total_steps for trainer in group] == [6] * len(group)


def test_a_diverging_node_is_named_at_the_step_a_per_node_run_names():
    alone, together = _group(), _group()
    for group in (alone, together):
        x = group[2].stream.full_batch()[0]
        x[5] = math.nan  # one poisoned sample: the loss turns NaN at the first batch that holds it
    with pytest.raises(TrainingDiverged) as per_node:
        alone[2].run(12)
    with pytest.raises(TrainingDiverged, match="node 2 of a batch of 6") as caught:
        BatchedTraining(together).run(12)
    assert caught.value.step == per_node.value.step
    assert caught.value.node == 2
    assert [trainer.total_steps for trainer in together] == [0] * len(together)


def test_step_counts_are_checked():
    batched = BatchedTraining(_group())
    with pytest.raises(ValueError, match="integer >= 0"):
        batched.run(-1)
    with pytest.raises(ValueError, match="2 step counts for 6 nodes"):
        batched.run([1, 2])
    # numpy integers, as a drawn number of local steps may be, are counts like any other
    assert [stats.steps for stats in batched.run([np.int64(2)] * len(SIZES))] == [2] * len(SIZES)


def test_batchable_accepts_nodes_of_one_setup_and_shards_of_any_size():
    assert batchable(_group()) is None
    assert batchable(_group(model="mlp:hidden=16", optimizer="adam")) is None
    assert batchable([]) == "there are no trainers"


def _with_model(module_for_node):
    """Return trainers whose models ``module_for_node(node)`` builds, trained by SGD."""
    trainers = []
    for node, size in enumerate(SIZES):
        trainer = _trainer(node, size)
        module = module_for_node(node)
        flat = FlatParameters(module)
        optimizer = make_optimizer("sgd", module.parameters(), 0.05, momentum=0.9)
        trainers.append(LocalTrainer(module, flat, optimizer, None, trainer.stream))
    return trainers


def _frozen(node):
    module = build_model("mlp:hidden=16", (FEATURES,), CLASSES, seed=node)
    module[1].bias.requires_grad_(False)
    return module


def _hooked(group):
    group[4].model.register_forward_hook(lambda *args: None)
    return group


def _set(group, node, **attributes):
    for name, value in attributes.items():
        setattr(group[node], name, value)
    return group


class _Trainer(LocalTrainer):
    pass


def _subclassed(group):
    group[1].__class__ = _Trainer
    return group


def _on_meta(node, size):
    """Build a trainer whose model and batches live on the meta device, not the CPU."""
    module = build_model("logreg", (FEATURES,), CLASSES, seed=node).to("meta")
    flat = FlatParameters(module)
    x, y = np.zeros((size, FEATURES), np.float32), np.zeros(size, np.int64)
    stream = BatchStream(x, y, BATCH, seed=[0, node], device="meta")
    optimizer = make_optimizer("sgd", module.parameters(), 0.05, momentum=0.9, weight_decay=1e-3)
    return LocalTrainer(module, flat, optimizer, make_lr_schedule("cosine", optimizer, TOTAL_STEPS), stream)


def _other_optimizer(group, node, build):
    trainer = group[node]
    trainer.optimizer = build(trainer.flat.params)
    return group


def _shared_stream():
    group = _group()
    group[2].stream = group[1].stream
    return group


ALL = "nodes 0, 1, 2, 3, 4 and 1 more"
REFUSED = [  # what batchable says, for which nodes, of the trainers built
    (
        "another architecture",
        "node 3",
        lambda: [*_group(model="mlp:hidden=16")[:3], _trainer(3, 9, model="mlp")],
    ),
    ("another architecture", "nodes 1, 2, 3, 4, 5", lambda: [_trainer(0, 9, model="mlp"), *_group()[1:]]),
    (
        "buffers",
        ALL,
        lambda: _with_model(lambda node: nn.Sequential(nn.Linear(FEATURES, 10), nn.BatchNorm1d(10))),
    ),
    (
        "or dropout",
        ALL,
        lambda: _with_model(lambda node: nn.Sequential(nn.Dropout(), nn.Linear(FEATURES, 10))),
    ),
    ("frozen parameters", ALL, lambda: _with_model(_frozen)),
    ("hooks on its modules", "node 4", lambda: _hooked(_group())),
    ("DP-SGD", "node 2", lambda: [*_group()[:2], _trainer(2, 9, gradient=lambda: (torch.zeros(()), 1))]),
    ("gradient hook (COMP-AMS", "node 0", lambda: [_trainer(0, 9, gradient_hook=print), *_group()[1:]]),
    ("observer", "node 5", lambda: _set(_group(), 5, observer=lambda *args: None)),
    (
        "stretcher (--slowdown",
        "node 1",
        lambda: [*_group()[:1], _trainer(1, 9, stretcher=StepStretcher(2.0))],
    ),
    (
        "another loss function",
        "node 3",
        lambda: _set(_group(), 3, loss_fn=lambda out, y: cross_entropy(out, y)),
    ),
    ("steps may differ", "node 1", lambda: _subclassed(_group())),
    ("uses RMSprop", "node 2", lambda: _other_optimizer(_group(), 2, lambda p: torch.optim.RMSprop(p, 0.01))),
    ("not node 0's SGD", "node 4", lambda: [*_group()[:4], _trainer(4, 9, optimizer="adam")]),
    ("other optimizer settings", "node 4", lambda: [*_group()[:4], _trainer(4, 9, optimizer="sgd-plain")]),
    (
        "parameter groups",
        "node 1",
        lambda: _other_optimizer(
            _group(), 1, lambda p: torch.optim.SGD([{"params": [p[0]]}, {"params": [p[1]]}], 0.1)
        ),
    ),
    (
        "tensor-valued",
        "node 1",
        lambda: _other_optimizer(_group(), 1, lambda p: torch.optim.SGD(p, torch.tensor(0.1))),
    ),
    (
        "fused, capturable or differentiable",
        "node 0",
        lambda: _other_optimizer(_group(), 0, lambda p: torch.optim.SGD(p, 0.1, differentiable=True)),
    ),
    ("trains on meta", "node 5", lambda: [*_group()[:5], _on_meta(5, 9)]),
    ("shares its stream with node 1", "node 2", _shared_stream),
]


@pytest.mark.parametrize(("reason", "nodes", "build"), REFUSED, ids=[case[0] for case in REFUSED])
def test_batchable_refuses_what_a_batched_step_cannot_reproduce(reason, nodes, build):
    trainers = build()
    found = batchable(trainers)
    assert found is not None and f"{reason}" in found, found
    assert f"({nodes})" in found.split(reason, 1)[1].split(";")[0], found  # named with its own reason
    with pytest.raises(ConfigError, match="train them one by one"):
        BatchedTraining(trainers)


def test_batchable_reports_every_problem():
    group = _set(_group(), 1, observer=lambda *args: None)
    group[3] = _trainer(3, 9, stretcher=StepStretcher(2.0))
    found = batchable(group)
    assert "observer" in found and "node 1" in found
    assert "stretcher" in found and "node 3" in found


def test_run_refuses_a_plugin_set_after_construction():
    group = _group()
    batched = BatchedTraining(group)
    group[2].observer = lambda *args: None
    with pytest.raises(ConfigError, match=r"observer .*\(node 2\)"):
        batched.run(1)
    assert group[2].total_steps == 0


def test_update_corrections_match_per_node_runs():
    """gt's correction −η c after every step, and the Σ η it reports, are the same batched or alone."""
    alone, together = _group(model="mlp:hidden=16"), _group(model="mlp:hidden=16")
    for node, (a, b) in enumerate(zip(alone, together, strict=True)):
        drawn = np.random.default_rng([3, node]).normal(size=a.flat.numel)
        offset = torch.from_numpy(drawn.astype(np.float32))
        a.correction, b.correction = UpdateCorrection(offset.clone()), UpdateCorrection(offset.clone())
    counts = [4, 3, 7, 0, 5, 2]
    expected = [trainer.run(count) for trainer, count in zip(alone, counts, strict=True)]
    _assert_same_stats(expected, BatchedTraining(together).run(counts))
    _assert_same_nodes(alone, together)
    for a, b in zip(alone, together, strict=True):
        assert b.correction.take_rate_sum() == pytest.approx(a.correction.take_rate_sum(), rel=1e-12)
    # the correction moved the models: without it they end elsewhere
    plain = _group(model="mlp:hidden=16")
    for trainer, count in zip(plain, counts, strict=True):
        trainer.run(count)
    assert not torch.allclose(plain[1].flat.flat, together[1].flat.flat, atol=1e-3)
