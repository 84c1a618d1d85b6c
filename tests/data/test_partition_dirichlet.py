"""Dirichlet label skew: the log-space sampler, min_size repair, balance, and refusals."""

from __future__ import annotations

import numpy as np
import pytest

from fedgossip.data.partition import PARTITIONERS, Samples
from fedgossip.data.partition.base import check_cover
from fedgossip.data.partition.dirichlet import Dirichlet, _lift_to_floor, dirichlet, log_dirichlet
from fedgossip.data.stats import heterogeneity, label_histograms
from fedgossip.errors import ConfigError


def _labels(n: int, num_classes: int = 10, seed: int = 0) -> Samples:
    return Samples(y=np.random.default_rng(seed).integers(0, num_classes, n), num_classes=num_classes)


def _histograms(parts: list[np.ndarray], s: Samples) -> np.ndarray:
    return label_histograms([s.y[p] for p in parts], s.num_classes)


# --- the sampler ---------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [1e-6, 1e-3, 0.1, 1.0, 50.0])
def test_sampler_rows_are_distributions_without_nan(alpha):
    rows = dirichlet(np.full(1000, alpha), 20, np.random.default_rng(0))
    assert rows.shape == (20, 1000)
    assert np.all(np.isfinite(rows)) and np.all(rows >= 0)
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, rtol=1e-12)


def test_sampler_log_proportions_stay_finite_where_proportions_underflow():
    log_rows = log_dirichlet(np.full(50, 1e-3), 100, np.random.default_rng(0))
    assert np.all(np.isfinite(log_rows))
    assert np.any(np.exp(log_rows) == 0.0)  # the case a linear-space sampler turns into 0/0


def test_sampler_mean_is_alpha_over_its_sum():
    alpha = np.array([0.1, 0.5, 2.0, 0.4])
    rows = dirichlet(alpha, 20_000, np.random.default_rng(1))
    # standard error of each mean is below 0.0015 here (Var = a_i(a0 − a_i) / (a0²(a0 + 1)))
    np.testing.assert_allclose(rows.mean(axis=0), alpha / alpha.sum(), atol=0.01)


def test_sampler_tiny_alpha_picks_each_component_equally_often():
    # nearly one-hot rows: any bias in how ties or underflow are handled would show here
    rows = dirichlet(np.full(5, 1e-3), 20_000, np.random.default_rng(2))
    np.testing.assert_allclose(rows.mean(axis=0), 0.2, atol=0.02)


# --- unbalanced (default) ------------------------------------------------------------------


def test_dirichlet_small_alpha_terminates():
    s = _labels(60_000)
    parts = PARTITIONERS.create("dirichlet:alpha=0.01").split(s, 1000, np.random.default_rng(0))
    check_cover(parts, len(s))
    assert len(parts) == 1000
    assert min(len(p) for p in parts) >= 10


@pytest.mark.parametrize("alpha", [1e-4, 0.01, 0.1])
def test_dirichlet_min_size_holds_at_small_alpha(alpha):
    s = _labels(3000)
    parts = Dirichlet(alpha=alpha, min_size=25).split(s, 100, np.random.default_rng(3))
    check_cover(parts, len(s))
    assert min(len(p) for p in parts) >= 25


def test_dirichlet_min_size_equal_to_the_average_gives_equal_nodes():
    # n = min_size · N leaves no surplus at all: every node must end at exactly min_size
    s = _labels(1000)
    parts = Dirichlet(alpha=0.05, min_size=50).split(s, 20, np.random.default_rng(0))
    assert [len(p) for p in parts] == [50] * 20


def test_dirichlet_repair_keeps_small_alpha_nodes_skewed():
    s = _labels(6000)
    parts = Dirichlet(alpha=0.01, min_size=30).split(s, 100, np.random.default_rng(4))
    stats = heterogeneity(_histograms(parts, s))
    # nodes lifted to min_size take from their own favoured class first, not a bit of everything
    assert stats["classes_per_node"]["median"] <= 2
    assert stats["label_tv_distance_mean"] > 0.7


def test_dirichlet_smaller_alpha_gives_larger_label_distance():
    s = _labels(5000)

    def mean_tv(alpha: float) -> float:
        values = []
        for seed in range(3):
            parts = Dirichlet(alpha=alpha, min_size=5).split(s, 50, np.random.default_rng(seed))
            values.append(heterogeneity(_histograms(parts, s))["label_tv_distance_mean"])
        return float(np.mean(values))

    assert mean_tv(0.05) > mean_tv(0.5) > mean_tv(50.0)


def test_dirichlet_large_alpha_is_close_to_iid():
    s = _labels(20_000)
    parts = Dirichlet(alpha=1e4, min_size=0).split(s, 10, np.random.default_rng(0))
    assert heterogeneity(_histograms(parts, s))["label_tv_distance_max"] < 0.05


def test_dirichlet_handles_classes_absent_from_the_data():
    s = Samples(y=np.random.default_rng(0).integers(0, 3, 500), num_classes=10)
    for balance in (False, True):
        parts = Dirichlet(alpha=0.1, min_size=5, balance=balance).split(s, 20, np.random.default_rng(0))
        check_cover(parts, len(s))
        assert _histograms(parts, s)[:, 3:].sum() == 0


def test_dirichlet_min_size_zero_still_leaves_no_node_empty():
    s = _labels(200)
    parts = Dirichlet(alpha=0.001, min_size=0).split(s, 200, np.random.default_rng(0))
    assert [len(p) for p in parts] == [1] * 200


# --- the min_size repair rule (counts[node, class]) -----------------------------------------


def test_repair_takes_the_recipients_favoured_class_from_the_donor_with_most_to_spare():
    counts = np.array([[8, 0], [3, 9], [0, 0]])
    # node 2 favours class 0; node 0 can spare 6 of it (8 − floor 2), node 1 only its 3
    _lift_to_floor(counts, np.array([[0.0, 0.0], [0.0, 0.0], [-1.0, -40.0]]), floor=2)
    assert counts.tolist() == [[6, 0], [3, 9], [2, 0]]


def test_repair_falls_back_to_the_next_class_when_the_favoured_one_has_no_surplus():
    counts = np.array([[3, 0], [0, 20], [0, 0]])
    # node 0 holds class 0 but only exactly the floor, so node 2 must take class 1 from node 1
    _lift_to_floor(counts, np.array([[0.0, 0.0], [0.0, 0.0], [-1.0, -40.0]]), floor=3)
    assert counts.tolist() == [[3, 0], [0, 17], [0, 3]]


def test_repair_spreads_a_need_over_several_donors():
    counts = np.array([[5, 0], [5, 0], [0, 0]])
    # node 2 needs 3; each donor can spare only 2 above the floor
    _lift_to_floor(counts, np.zeros((3, 2)), floor=3)
    assert sorted(counts[:2, 0].tolist()) == [3, 4]
    assert counts[2].tolist() == [3, 0]


# --- balanced ------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.01, 0.5, 100.0])
def test_dirichlet_balance_sizes_differ_by_at_most_one(alpha):
    s = _labels(1003)
    parts = Dirichlet(alpha=alpha, min_size=0, balance=True).split(s, 10, np.random.default_rng(0))
    check_cover(parts, len(s))
    assert sorted(len(p) for p in parts) == [100] * 7 + [101] * 3


def test_dirichlet_balance_still_skews_labels_at_small_alpha():
    s = _labels(5000)
    skewed = Dirichlet(alpha=0.05, balance=True).split(s, 50, np.random.default_rng(0))
    mixed = Dirichlet(alpha=50.0, balance=True).split(s, 50, np.random.default_rng(0))
    tv = [heterogeneity(_histograms(p, s))["label_tv_distance_mean"] for p in (skewed, mixed)]
    assert tv[0] > 0.5 > 0.1 > tv[1]


def test_dirichlet_balance_with_a_rare_class():
    # nodes wanting the rare class find it used up and fill their shortfall from what remains
    y = np.concatenate([np.zeros(5, np.int64), np.ones(995, np.int64)])
    parts = Dirichlet(alpha=0.01, balance=True).split(Samples(y, 2), 40, np.random.default_rng(0))
    check_cover(parts, len(y))
    assert {len(p) for p in parts} == {25}


# --- refusals ------------------------------------------------------------------------------


def test_dirichlet_min_size_too_large_is_refused_naming_the_fix():
    s = _labels(500)
    with pytest.raises(ConfigError, match=r"min_size=10 needs at least 640 samples for 64 nodes") as info:
        Dirichlet(alpha=0.1, min_size=10).split(s, 64, np.random.default_rng(0))
    assert "data has 500" in str(info.value) and "lower min_size" in str(info.value)


def test_dirichlet_more_nodes_than_samples_is_refused():
    with pytest.raises(ConfigError, match=r"only 30; use at most 30 nodes"):
        Dirichlet(min_size=0).split(_labels(30), 31, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("dirichlet:alpha=0", "alpha='0': must be > 0"),
        ("dirichlet:alpha=-0.5", "alpha='-0.5': must be > 0"),
        ("dirichlet:alpha=nan", "alpha='nan': must be a finite number"),
        ("dirichlet:min_size=-1", "min_size='-1': must be >= 0"),
        ("dirichlet:min_size=2.5", "min_size='2.5': expected an integer"),
        ("dirichlet:balance=maybe", "balance='maybe': expected true or false"),
        ("dirichlet:beta=1", "unknown parameter 'beta'"),
    ],
)
def test_dirichlet_bad_params_are_rejected_by_the_spec(spec, complaint):
    with pytest.raises(ConfigError, match=complaint):
        PARTITIONERS.create(spec)


def test_dirichlet_direct_construction_reports_every_problem():
    with pytest.raises(ConfigError) as info:
        Dirichlet(alpha=0.0, min_size=-2)
    assert "alpha" in str(info.value) and "min_size" in str(info.value)


def test_dirichlet_spec_is_canonical():
    assert PARTITIONERS.create("dirichlet:alpha=0.1").spec == "dirichlet:alpha=0.1,min_size=10,balance=false"
