"""IID: near-equal sizes, global label mix, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from fedgossip.data.partition import PARTITIONERS, Samples
from fedgossip.data.partition.base import check_cover
from fedgossip.data.partition.iid import Iid
from fedgossip.data.stats import heterogeneity, label_histograms
from fedgossip.errors import ConfigError


def _labels(n: int, num_classes: int = 10) -> Samples:
    return Samples(y=np.random.default_rng(0).integers(0, num_classes, n), num_classes=num_classes)


def test_iid_sizes_differ_by_at_most_one():
    parts = Iid().split(_labels(1003), 10, np.random.default_rng(0))
    assert sorted(len(p) for p in parts) == [100] * 7 + [101] * 3


def test_iid_nodes_see_the_global_label_mix():
    s = _labels(50_000)
    parts = Iid().split(s, 10, np.random.default_rng(0))
    stats = heterogeneity(label_histograms([s.y[p] for p in parts], 10))
    # 5000 samples per node: sampling noise alone keeps each node within a few percent
    assert stats["label_tv_distance_max"] < 0.05


def test_iid_returns_sorted_int64_indices():
    parts = Iid().split(_labels(100), 3, np.random.default_rng(0))
    check_cover(parts, 100)
    assert all(p.dtype == np.int64 and np.all(np.diff(p) > 0) for p in parts)


def test_iid_one_sample_per_node_is_allowed():
    parts = Iid().split(_labels(7), 7, np.random.default_rng(0))
    assert [len(p) for p in parts] == [1] * 7


def test_iid_more_nodes_than_samples_is_refused():
    with pytest.raises(ConfigError, match="only 7; use at most 7 nodes"):
        Iid().split(_labels(7), 8, np.random.default_rng(0))


def test_iid_takes_no_parameters():
    with pytest.raises(ConfigError, match="unknown parameter 'alpha'"):
        PARTITIONERS.create("iid:alpha=1")
