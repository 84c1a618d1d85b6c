"""BatchedEvaluation: many nodes' models scored on one test set as one computation, as evaluate scores each.

Every comparison is against :func:`evaluate` run node by node. The losses agree to a relative
1e-6, not bit for bit: the vmapped matmuls sum in another order (about one ulp per logit).
Accuracies must agree exactly: the inputs and weights are random floats, so no two logits of a
sample come within rounding of each other, where the two computations could pick other classes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fedgossip.errors import ConfigError, DataError
from fedgossip.local.batched_evaluation import MAX_FLOATS, BatchedEvaluation, chunk_shape, stackable
from fedgossip.local.evaluate import evaluate
from fedgossip.local.flat import FlatParameters
from fedgossip.local.models import build_model

torch.set_num_threads(1)

FEATURES, CLASSES, NODES, SAMPLES = 8, 4, 5, 50
LOSS_RTOL = 1e-6
# model -> a max_floats that fits 2 of its nodes by 7 samples: chunks of 2, 2, 1 nodes by 7 × 7 + 1 samples
CHUNKED = {"logreg": 120, "mlp:hidden=16": 424}


def _test_set(seed: int = 0, samples: int = SAMPLES) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, samples)
    x = rng.normal(size=(samples, FEATURES)) + y[:, None] % 2  # learnable enough for accuracies away from 0
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)


def _nodes(model: str = "logreg", count: int = NODES) -> tuple[list[nn.Module], list[FlatParameters]]:
    """Build ``count`` models of one architecture, each with weights of its own, as build_nodes wraps them."""
    models = [build_model(model, (FEATURES,), CLASSES, seed=node) for node in range(count)]
    params = [FlatParameters(module) for module in models]
    for node, flat in enumerate(params):  # and not where a fresh model starts: trained ones are larger
        flat.flat.mul_(1 + node)
    return models, params


def _assert_as_evaluate(models, params, x, y, **options) -> None:
    got = BatchedEvaluation(models, params, **options).evaluate(x, y)
    assert len(got) == len(models)
    for node, (model, score) in enumerate(zip(models, got, strict=True)):
        alone = evaluate(model, x, y)
        assert score.accuracy == alone.accuracy, f"node {node}"
        assert score.loss == pytest.approx(alone.loss, rel=LOSS_RTOL), f"node {node}"


@pytest.mark.parametrize("model", list(CHUNKED))
def test_every_node_scores_what_evaluate_gives_it(model):
    models, params = _nodes(model)
    x, y = _test_set()
    _assert_as_evaluate(models, params, x, y)
    scores = {round(score.loss, 6) for score in BatchedEvaluation(models, params).evaluate(x, y)}
    assert len(scores) == NODES  # each row is its own node's, not node 0's repeated


@pytest.mark.parametrize("model", list(CHUNKED))
def test_chunks_over_nodes_and_samples_with_partial_last_ones_score_the_same(model):
    models, params = _nodes(model)
    x, y = _test_set()
    batched = BatchedEvaluation(models, params, batch_size=7, max_floats=CHUNKED[model])
    nodes, samples = batched.chunk_shape(x)
    assert (nodes, samples) == (2, 7)  # 3 node chunks (the last of 1) by 8 sample chunks (the last of 1)
    _assert_as_evaluate(models, params, x, y, batch_size=7, max_floats=CHUNKED[model])


def test_the_run_sized_case_stays_within_the_budget():
    # 10,000 nodes × 37,000 samples × 10 classes would be 3.7e9 logits, 15 GB, at once
    for width, numel in ((10, 7850), (784, 7850), (200, 159_010), (10**8, 10)):
        nodes, samples = chunk_shape(10_000, 37_000, width, numel, 1024, MAX_FLOATS)
        assert nodes >= 1 and samples >= 1
        if width <= MAX_FLOATS:
            assert nodes * samples * width <= MAX_FLOATS and nodes * numel <= MAX_FLOATS
    assert chunk_shape(10_000, 37_000, 10, 610, 1024, MAX_FLOATS) == (1638, 1024)


def test_models_keep_their_mode_parameters_and_gradients():
    models, params = _nodes("mlp:hidden=16")
    models[1].eval()
    models[3][2].eval()  # one layer only
    modes = [[module.training for module in model.modules()] for model in models]
    weights = [flat.flat.clone() for flat in params]
    grads = [flat.flat_grad.clone() for flat in params]
    BatchedEvaluation(models, params).evaluate(*_test_set())
    assert [[module.training for module in model.modules()] for model in models] == modes
    for flat, before, grad in zip(params, weights, grads, strict=True):
        assert torch.equal(flat.flat, before) and torch.equal(flat.flat_grad, grad) and flat.is_bound()


def test_dropout_is_evaluated_in_eval_mode_as_evaluate_does():
    # in train mode dropout would zero half the hidden units and the scores would differ
    def build(node: int) -> nn.Module:
        torch.manual_seed(node)
        return nn.Sequential(nn.Linear(FEATURES, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, CLASSES))

    models = [build(node) for node in range(NODES)]
    for model in models:
        model.train()
    params = [FlatParameters(model) for model in models]
    assert stackable(models, params) is None
    _assert_as_evaluate(models, params, *_test_set())


def test_numpy_test_sets_and_one_node_are_scored_too():
    models, params = _nodes(count=1)
    x, y = _test_set(samples=3)
    _assert_as_evaluate(models, params, x.numpy(), y.numpy())


def _batch_norm(models, params):
    model = nn.Sequential(nn.Linear(FEATURES, CLASSES), nn.BatchNorm1d(CLASSES))
    return [*models[:2], model], [*params[:2], FlatParameters(model)]


def _other_architecture(models, params):
    model = build_model("mlp:hidden=16", (FEATURES,), CLASSES, seed=0)
    return [*models[:3], model, models[4]], [*params[:3], FlatParameters(model), params[4]]


def _frozen(models, params):
    model = build_model("logreg", (FEATURES,), CLASSES, seed=0)
    model[1].bias.requires_grad_(False)
    return [model, *models[1:]], [FlatParameters(model), *params[1:]]


def _hooked(models, params):
    models[2].register_forward_hook(lambda *args: None)
    return models, params


REFUSED = [  # what stackable says, for which nodes
    ("has buffers", "node 2", _batch_norm),
    ("has BatchNorm or InstanceNorm", "node 2", _batch_norm),
    ("another architecture", "node 3", _other_architecture),
    ("frozen parameters", "node 0", _frozen),
    ("hooks on its modules", "node 2", _hooked),
]


@pytest.mark.parametrize(("reason", "nodes", "change"), REFUSED, ids=[f"{r}-{n}" for r, n, _ in REFUSED])
def test_stackable_refuses_what_one_functional_call_cannot_score(reason, nodes, change):
    models, params = change(*_nodes())
    found = stackable(models, params)
    assert found is not None and reason in found, found
    assert f"({nodes})" in found.split(reason, 1)[1].split(";")[0], found  # named with its own reason
    with pytest.raises(ConfigError, match="evaluate them one by one"):
        BatchedEvaluation(models, params)


def test_stackable_accepts_one_architecture_and_refuses_nothing_to_stack():
    assert stackable(*_nodes("mlp:hidden=16")) is None
    assert stackable([], []) == "there are no models"
    models, params = _nodes()
    assert "2 parameter vectors for 5 models" in stackable(models, params[:2])


def test_a_hook_put_on_a_model_after_construction_is_refused():
    models, params = _nodes()
    batched = BatchedEvaluation(models, params)
    models[4][1].register_forward_pre_hook(lambda *args: None)
    with pytest.raises(ConfigError, match=r"hooks on its modules \(node 4\)"):
        batched.evaluate(*_test_set())


@pytest.mark.parametrize("samples, labels", [(0, 0), (3, 2)])
def test_an_empty_or_mismatched_test_set_is_refused_as_evaluate_refuses_it(samples, labels):
    models, params = _nodes()
    x, y = torch.zeros(samples, FEATURES), torch.zeros(labels, dtype=torch.int64)
    with pytest.raises(DataError, match="check the test set"):
        evaluate(models[0], x, y)
    with pytest.raises(DataError, match="check the test set"):
        BatchedEvaluation(models, params).evaluate(x, y)
