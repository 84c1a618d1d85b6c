"""The asynchronous schedule's evaluations on one rank of several nodes: rows per node, saved and written."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from mpi4py import MPI

from fedgossip.comm.placement import Placement
from fedgossip.run.evaluator import AverageModel, Evaluations

NAMES = ("test_accuracy", "interactions")


class _Evaluator:
    """An evaluator of co-hosted nodes whose values are their id and the count of evaluations so far."""

    def __init__(self, nodes: int = 3):
        self.nodes = [SimpleNamespace(id=node) for node in range(nodes)]
        self.node = SimpleNamespace(metric_names=NAMES)
        self.comm, self.rank, self.placement = MPI.COMM_SELF, 0, Placement(nodes, 1)
        self.taken = 0

    def own_values(self) -> np.ndarray:
        self.taken += 1
        return np.array([[node.id, self.taken] for node in self.nodes], dtype=np.float64)

    def models(self) -> list[np.ndarray]:
        return [np.full(4, node.id, dtype=np.float32) for node in self.nodes]

    def average_model(self, models, blocking):
        return AverageModel(models, [len(models)], (MPI.COMM_SELF, MPI.COMM_SELF), blocking)

    def scalars(self, reduced):
        distance = reduced.consensus_distance
        return {"avg_model_accuracy": 0.5, "avg_model_loss": 1.0, "consensus_distance": distance}


class _Writer:
    def __init__(self):
        self.appended = []

    def append(self, round_index, wall, per_node, scalars):
        self.appended.append((round_index, wall, {k: v.copy() for k, v in per_node.items()}, scalars))


def test_every_evaluation_writes_one_column_per_node_and_survives_a_checkpoint():
    evaluations = Evaluations(_Evaluator())
    evaluations.take(5, 1.5)
    evaluations.take(10, 3.0)
    evaluations.settle()
    saved = evaluations.state_dict()
    assert saved["rows"].shape == (2, 3, 2 + len(NAMES))
    restored = Evaluations(_Evaluator())
    restored.load_state_dict(saved)
    restored.take(15, 4.5)
    writer = _Writer()
    restored.finish(writer)
    assert [(r, wall) for r, wall, _, _ in writer.appended] == [(5, 1.5), (10, 3.0), (15, 4.5)]
    _, _, per_node, scalars = writer.appended[1]
    np.testing.assert_array_equal(per_node["test_accuracy"], [0, 1, 2])  # node order
    np.testing.assert_array_equal(per_node["interactions"], [2, 2, 2])
    # models of four values 0, 1 and 2 around their mean 1
    assert scalars["consensus_distance"] == pytest.approx(8 / 3)


def test_evaluations_saved_while_a_rank_hosted_one_node_still_load():
    rows = np.array([[5, 1.5, 0.9, 5]], dtype=np.float64)  # [evaluations, 2 + metrics]
    evaluations = Evaluations(_Evaluator(nodes=1))
    evaluations.load_state_dict({"rows": rows, "scalars": np.array([[0, 0.5, 1.0, 0.0]])})
    assert evaluations.state_dict()["rows"].shape == (1, 1, 4)
    with pytest.raises(ValueError, match=r"expected \[n, 3, 4\]"):
        Evaluations(_Evaluator(nodes=3)).load_state_dict({"rows": rows, "scalars": np.zeros((0, 4))})


class _ShownEvaluator(_Evaluator):
    """Nodes 0..2 of which node 1 is an attacker; each has sent (id + 1) MB."""

    def __init__(self):
        super().__init__()
        self.node = SimpleNamespace(metric_names=("test_accuracy", "bytes_sent"))
        self.attackers = frozenset({1})

    def own_values(self) -> np.ndarray:
        return np.array([[0.1 * (node.id + 1), 1e6 * (node.id + 1)] for node in self.nodes])


def test_each_evaluation_is_shown_once_reduced_with_the_figures_of_a_round():
    shown = []
    evaluations = Evaluations(_ShownEvaluator(), shown=lambda step, figures: shown.append((step, figures)))
    evaluations.take(5, 1.0)
    evaluations.take(10, 2.0)
    evaluations.settle()
    # mean accuracy of the honest nodes 0 and 2: (0.1 + 0.3) / 2; MB sent by all three: 1 + 2 + 3
    expected = {"mean_accuracy": pytest.approx(0.2), "mb_sent": pytest.approx(6.0), "avg_model_accuracy": 0.5}
    assert shown == [(5, expected), (10, expected)]
