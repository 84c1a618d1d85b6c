"""Pathological shards: exactly K distinct classes per node, classes spread evenly, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from fedgossip.data.partition import PARTITIONERS, Samples
from fedgossip.data.partition.base import check_cover
from fedgossip.data.partition.shards import Shards
from fedgossip.data.stats import label_histograms
from fedgossip.errors import ConfigError


def _labels(n: int, num_classes: int = 10, seed: int = 0) -> Samples:
    return Samples(y=np.random.default_rng(seed).integers(0, num_classes, n), num_classes=num_classes)


def _split(s: Samples, nodes: int, k: int, seed: int = 0) -> np.ndarray:
    parts = Shards(classes_per_node=k).split(s, nodes, np.random.default_rng(seed))
    check_cover(parts, len(s))
    return label_histograms([s.y[p] for p in parts], s.num_classes)


@pytest.mark.parametrize(
    ("nodes", "k"),
    [(100, 2), (7, 3), (3, 4), (10, 10), (1, 10), (13, 7), (33, 1)],
)
def test_shards_gives_exactly_k_classes_per_node(nodes, k):
    histograms = _split(_labels(5000), nodes, k)
    assert np.all(np.count_nonzero(histograms, axis=1) == k)


@pytest.mark.parametrize(("nodes", "k"), [(100, 2), (7, 3), (13, 7)])
def test_shards_uses_each_class_on_near_equally_many_nodes(nodes, k):
    holders = np.count_nonzero(_split(_labels(5000), nodes, k), axis=0)
    # nodes × k class slots over 10 classes: each class on ⌊nodes·k/10⌋ or ⌈nodes·k/10⌉ nodes
    assert set(holders.tolist()) <= {nodes * k // 10, -(-nodes * k // 10)}
    assert holders.sum() == nodes * k


def test_shards_splits_each_class_evenly_among_its_holders():
    histograms = _split(_labels(5000), 30, 2)
    for column in histograms.T:
        held = column[column > 0]
        assert held.max() - held.min() <= 1


def test_shards_varies_which_classes_share_a_node():
    # one permutation repeated would give only 10/2 = 5 distinct pairs of classes
    histograms = _split(_labels(5000), 100, 2)
    pairs = {tuple(np.flatnonzero(row)) for row in histograms}
    assert len(pairs) > 5


def test_shards_counts_only_classes_present_in_the_data():
    s = Samples(y=np.random.default_rng(0).integers(0, 3, 300), num_classes=10)
    assert np.all(np.count_nonzero(_split(s, 6, 3), axis=1) == 3)
    with pytest.raises(ConfigError, match=r"classes_per_node=4 asks for more classes than the data has \(3"):
        Shards(classes_per_node=4).split(s, 6, np.random.default_rng(0))


def test_shards_too_few_class_slots_is_refused_saying_samples_would_be_dropped():
    with pytest.raises(ConfigError, match="would be dropped") as info:
        Shards(classes_per_node=2).split(_labels(1000), 4, np.random.default_rng(0))
    assert "at least 3" in str(info.value) and "at least 5 nodes" in str(info.value)


def test_shards_class_smaller_than_its_holders_is_refused():
    # class 1 has 3 samples but 10 nodes × 1 class over 2 classes puts each class on 5 nodes
    y = np.array([0] * 50 + [1] * 3)
    with pytest.raises(ConfigError, match="smallest class has only 3 samples"):
        Shards(classes_per_node=1).split(Samples(y, 2), 10, np.random.default_rng(0))


def test_shards_more_classes_per_node_than_classes_is_refused_naming_the_fix():
    with pytest.raises(ConfigError, match="set classes_per_node to at most 4"):
        Shards(classes_per_node=5).split(_labels(1000, num_classes=4), 1, np.random.default_rng(0))


@pytest.mark.parametrize("spec", ["shards:classes_per_node=0", "shards:classes_per_node=two"])
def test_shards_bad_params_are_rejected_by_the_spec(spec):
    with pytest.raises(ConfigError, match="classes_per_node"):
        PARTITIONERS.create(spec)
