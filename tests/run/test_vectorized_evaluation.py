"""A rank's evaluation of its co-hosted nodes: batched where they share a test set and stack, else alone."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mpi4py import MPI

from fedgossip.comm.placement import Placement
from fedgossip.local.evaluate import evaluate
from fedgossip.local.flat import FlatParameters
from fedgossip.local.models import build_model
from fedgossip.run.evaluator import Evaluator
from fedgossip.run.vectorized_evaluation import VectorizedEvaluation

torch.set_num_threads(1)

FEATURES, CLASSES = 6, 3


def _test_set(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    x = torch.as_tensor(rng.normal(size=(40, FEATURES)), dtype=torch.float32)
    return x, torch.as_tensor(rng.integers(0, CLASSES, 40))


def _node(node: int, test: tuple[torch.Tensor, torch.Tensor], model: str = "logreg") -> SimpleNamespace:
    """A node as the evaluator sees it: its id, model, flat parameters, test set and metrics row."""
    module = build_model(model, (FEATURES,), CLASSES, seed=node)
    return SimpleNamespace(
        id=node,
        model=module,
        params=FlatParameters(module),
        test_x=test[0],
        test_y=test[1],
        metrics_vector=lambda accuracy, loss: np.array([accuracy, loss]),
    )


def _assert_as_evaluate(nodes, scores, exact: set[int] = frozenset()) -> None:
    """Assert each node's score is evaluate's: to the bit for the nodes in ``exact`` (scored alone)."""
    for node, score in zip(nodes, scores, strict=True):
        alone = evaluate(node.model, node.test_x, node.test_y)
        if node.id in exact:
            assert (score.accuracy, score.loss) == (alone.accuracy, alone.loss), node.id
        else:
            assert score.accuracy == alone.accuracy and score.loss == pytest.approx(alone.loss, rel=1e-6)


def test_nodes_are_grouped_by_test_set_and_the_ones_that_cannot_stack_are_scored_alone():
    shared, own = _test_set(0), _test_set(1)
    nodes = [_node(0, shared), _node(1, shared), _node(2, own), _node(3, shared), _node(4, shared, "mlp")]
    nodes += [_node(5, own), _node(6, _test_set(2))]
    vectorized = VectorizedEvaluation()
    scores = vectorized.evaluate(nodes)
    # nodes 0, 1, 3 and 4 share a test set but not an architecture: all four alone; 2 and 5 together
    _assert_as_evaluate(nodes, scores, exact={0, 1, 3, 4, 6})
    assert vectorized._batches[(0, 1, 3, 4)] is None and vectorized._batches[(2, 5)] is not None


def test_a_model_hooked_after_the_first_evaluation_sends_its_group_back_to_one_by_one():
    test = _test_set(0)
    nodes = [_node(node, test) for node in range(4)]
    vectorized = VectorizedEvaluation()
    _assert_as_evaluate(nodes, vectorized.evaluate(nodes))
    nodes[2].model.register_forward_hook(lambda *args: None)
    _assert_as_evaluate(nodes, vectorized.evaluate(nodes), exact={0, 1, 2, 3})


@pytest.mark.parametrize("vectorize", [False, True])
def test_the_evaluator_batches_co_hosted_nodes_only_when_vectorized(vectorize):
    test = _test_set(0)
    nodes = [_node(node, test) for node in range(3)]
    evaluator = Evaluator(nodes, MPI.COMM_SELF, Placement(3, 1), vectorize)
    assert (evaluator._vectorized is not None) == vectorize
    try:
        values = evaluator.own_values()
    finally:
        evaluator.free()
    alone = [evaluate(node.model, node.test_x, node.test_y) for node in nodes]
    expected = np.array([[score.accuracy, score.loss] for score in alone])
    if vectorize:
        np.testing.assert_allclose(values, expected, rtol=1e-6, atol=0)
    else:  # --one-by-one: evaluate's own figures, to the bit
        np.testing.assert_array_equal(values, expected)
