"""Quantity skew: log-normal node sizes with min_size, IID labels."""

from __future__ import annotations

import numpy as np
import pytest

from fedgossip.data.partition import PARTITIONERS, Samples
from fedgossip.data.partition.base import check_cover
from fedgossip.data.partition.quantity import Quantity
from fedgossip.data.stats import heterogeneity, label_histograms
from fedgossip.errors import ConfigError


def _labels(n: int, num_classes: int = 10) -> Samples:
    return Samples(y=np.random.default_rng(0).integers(0, num_classes, n), num_classes=num_classes)


def _size_cv(parts: list[np.ndarray]) -> float:
    sizes = np.array([len(p) for p in parts])
    return float(sizes.std() / sizes.mean())


def test_quantity_sigma_zero_gives_equal_sizes():
    parts = Quantity(sigma=0.0).split(_labels(1000), 8, np.random.default_rng(0))
    assert [len(p) for p in parts] == [125] * 8


def test_quantity_sigma_zero_sizes_differ_by_at_most_one_when_uneven():
    parts = Quantity(sigma=0.0, min_size=3).split(_labels(1003), 10, np.random.default_rng(0))
    assert sorted(len(p) for p in parts) == [100] * 7 + [101] * 3


def test_quantity_larger_sigma_gives_larger_size_spread():
    s = _labels(20_000)
    cv = {
        sigma: np.mean(
            [_size_cv(Quantity(sigma=sigma).split(s, 50, np.random.default_rng(k))) for k in range(3)]
        )
        for sigma in (0.3, 1.0, 2.0)
    }
    assert cv[0.3] < cv[1.0] < cv[2.0]


@pytest.mark.parametrize("sigma", [0.5, 3.0, 50.0])
def test_quantity_min_size_holds(sigma):
    s = _labels(2000)
    parts = Quantity(sigma=sigma, min_size=15).split(s, 100, np.random.default_rng(1))
    check_cover(parts, len(s))
    assert min(len(p) for p in parts) >= 15


def test_quantity_huge_sigma_neither_overflows_nor_empties_a_node():
    s = _labels(500)
    parts = Quantity(sigma=1e6).split(s, 50, np.random.default_rng(0))
    check_cover(parts, len(s))
    assert min(len(p) for p in parts) >= 1


def test_quantity_keeps_labels_iid():
    s = _labels(40_000)
    parts = Quantity(sigma=0.5, min_size=1000).split(s, 10, np.random.default_rng(0))
    assert heterogeneity(label_histograms([s.y[p] for p in parts], 10))["label_tv_distance_max"] < 0.05


def test_quantity_min_size_too_large_is_refused_naming_the_fix():
    with pytest.raises(ConfigError, match=r"min_size=20 needs at least 200 samples for 10 nodes") as info:
        Quantity(min_size=20).split(_labels(150), 10, np.random.default_rng(0))
    assert "lower min_size to at most 15" in str(info.value)


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("quantity:sigma=-1", "sigma='-1': must be >= 0"),
        ("quantity:min_size=0", "min_size='0': must be >= 1"),
        ("quantity:sigma=inf", "sigma='inf': must be a finite number"),
    ],
)
def test_quantity_bad_params_are_rejected_by_the_spec(spec, complaint):
    with pytest.raises(ConfigError, match=complaint):
        PARTITIONERS.create(spec)
