"""Partition statistics on small cases whose values are worked out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fedgossip.data.stats import heterogeneity, label_histograms
from fedgossip.errors import DataError


def test_label_histograms_count_each_nodes_labels():
    labels = [np.array([0, 2, 2]), np.array([], dtype=np.int64), np.array([1])]
    histograms = label_histograms(labels, 3)
    assert histograms.dtype == np.int64
    assert histograms.tolist() == [[1, 0, 2], [0, 0, 0], [0, 1, 0]]


def test_label_histograms_refuse_labels_outside_the_classes():
    with pytest.raises(DataError, match=r"outside 0\.\.2"):
        label_histograms([np.array([0, 3])], 3)


def test_disjoint_classes_are_half_way_from_the_global_mix():
    # global mix (1/2, 1/2); each node (1, 0) or (0, 1): TV = ½(½ + ½) = ½
    stats = heterogeneity(np.array([[2, 0], [0, 2]]))
    assert stats["label_tv_distance_mean"] == pytest.approx(0.5)
    assert stats["label_tv_distance_max"] == pytest.approx(0.5)
    assert stats["effective_classes_mean"] == pytest.approx(1.0)  # one class: entropy 0
    assert stats["size_cv"] == 0.0
    assert stats["classes_per_node"] == {"min": 1, "p25": 1.0, "median": 1.0, "p75": 1.0, "max": 1}


def test_nodes_with_the_global_mix_have_zero_distance():
    # sizes 4 and 8: mean 6, population std 2, so CV = 1/3; four even classes: 4 effective
    stats = heterogeneity(np.array([[1, 1, 1, 1], [2, 2, 2, 2]]))
    assert stats["label_tv_distance_mean"] == 0.0
    assert stats["label_tv_distance_max"] == 0.0
    assert stats["size_mean"] == pytest.approx(6.0)
    assert stats["size_cv"] == pytest.approx(1 / 3)
    assert (stats["size_min"], stats["size_max"]) == (4, 8)
    assert stats["effective_classes_mean"] == pytest.approx(4.0)


def test_an_empty_node_counts_as_fully_distant_and_never_gives_nan():
    stats = heterogeneity(np.array([[3, 1], [0, 0], [1, 3]]))
    # global (1/2, 1/2); nodes (3/4, 1/4) and (1/4, 3/4): TV = ½(¼ + ¼) = ¼; empty node: 1
    assert stats["label_tv_distance_mean"] == pytest.approx((0.25 + 1.0 + 0.25) / 3)
    assert stats["label_tv_distance_max"] == 1.0
    # sizes 4, 0, 4: mean 8/3, deviations 4/3, −8/3, 4/3, variance 32/9, CV = (4√2/3)/(8/3) = √2/2
    assert stats["size_mean"] == pytest.approx(8 / 3)
    assert stats["size_cv"] == pytest.approx(math.sqrt(2) / 2)
    assert (stats["size_min"], stats["size_max"]) == (0, 4)
    # classes per node 2, 0, 2: sorted [0, 2, 2], p25 at position 0.5 → 1
    assert stats["classes_per_node"] == {"min": 0, "p25": 1.0, "median": 2.0, "p75": 2.0, "max": 2}
    # exp(H(¾, ¼)) = ¾^(−¾)·¼^(−¼) = 4 / 3^(¾); the empty node has 0 effective classes
    assert stats["effective_classes_mean"] == pytest.approx(2 * 4 / 3**0.75 / 3)
    assert stats["num_nodes"] == 3 and stats["num_samples"] == 8


def test_all_empty_nodes_give_finite_statistics():
    stats = heterogeneity(np.zeros((2, 3), dtype=np.int64))
    assert stats["label_tv_distance_mean"] == 1.0
    assert stats["size_cv"] == 0.0
    assert stats["effective_classes_mean"] == 0.0


def test_statistics_are_plain_json_values():
    stats = heterogeneity(np.array([[5, 0, 1], [2, 2, 2]]))
    assert json.loads(json.dumps(stats)) == stats
    scalars = [v for v in stats.values() if not isinstance(v, dict)] + list(
        stats["classes_per_node"].values()
    )
    assert all(type(v) in (int, float) for v in scalars)


@pytest.mark.parametrize("bad", [np.zeros((0, 3)), np.zeros(4)])
def test_heterogeneity_refuses_histograms_that_are_not_nodes_by_classes(bad):
    with pytest.raises(DataError, match=r"\[nodes, classes\]"):
        heterogeneity(bad)
