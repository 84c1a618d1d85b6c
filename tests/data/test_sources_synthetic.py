"""Synthetic(α, β): reproducible, one group per device, and non-IID as FedProx describes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from fedgossip.data.sources import SOURCES
from fedgossip.data.sources.synthetic import Synthetic
from fedgossip.errors import ConfigError


def contingency_p_value(groups: np.ndarray, labels: np.ndarray, classes: int) -> float:
    """p-value of the chi-square test that every device draws its labels from one distribution."""
    table = np.zeros((groups.max() + 1, classes))
    np.add.at(table, (groups, labels), 1)
    table = table[:, table.sum(axis=0) >= 5 * len(table)]  # keep classes frequent enough for the test
    return chi2_contingency(table).pvalue


def test_same_seed_gives_the_same_data():
    first = SOURCES.create("synthetic:seed=5,devices=10").load()
    second = SOURCES.create("synthetic:seed=5,devices=10").load()
    np.testing.assert_array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(first.y_train, second.y_train)
    np.testing.assert_array_equal(first.groups, second.groups)


def test_different_seeds_give_different_data():
    first = Synthetic(seed=1, devices=10).load()
    second = Synthetic(seed=2, devices=10).load()
    assert first.x_train.shape != second.x_train.shape or not np.allclose(first.x_train, second.x_train)


def test_shapes_types_and_classes():
    data = Synthetic(devices=7, dim=13, classes=4).load()
    assert data.x_train.dtype == np.float32 and data.x_train.shape[1:] == (13,)
    assert data.y_train.dtype == np.int64 and data.classes == ("0", "1", "2", "3")
    assert data.x_test is None


def test_groups_are_the_devices_with_at_least_fifty_samples_each():
    data = Synthetic(devices=12, seed=4).load()
    counts = np.bincount(data.groups)
    assert len(counts) == 12 and counts.min() >= 50
    assert counts.sum() == len(data.y_train)
    assert np.all(np.diff(data.groups) >= 0)  # each device's samples are contiguous


def test_max_samples_caps_every_device():
    data = Synthetic(devices=40, max_samples=60, seed=0).load()
    counts = np.bincount(data.groups)
    assert counts.max() == 60 and counts.min() >= 50


def test_max_samples_below_the_minimum_is_refused():
    with pytest.raises(ConfigError, match="max_samples=10"):
        SOURCES.create("synthetic:max_samples=10")


def test_negative_alpha_is_refused():
    with pytest.raises(ConfigError, match="alpha"):
        SOURCES.create("synthetic:alpha=-1")


def test_label_distributions_differ_across_devices():
    data = Synthetic(alpha=1.0, beta=1.0, devices=30, seed=0).load()
    assert contingency_p_value(data.groups, data.y_train, 10) < 1e-12


def test_iid_variant_has_one_label_distribution():
    data = Synthetic(devices=30, seed=0, iid=True).load()
    assert contingency_p_value(data.groups, data.y_train, 10) > 1e-3


def test_feature_variances_decay_as_in_the_paper():
    # Σ_jj = (j + 1)^-1.2 around each device's own mean v_k.
    data = Synthetic(devices=30, dim=20, seed=3).load()
    x = data.x_train.astype(np.float64)
    counts = np.bincount(data.groups)
    means = np.zeros((len(counts), x.shape[1]))
    np.add.at(means, data.groups, x)
    centered = x - (means / counts[:, None])[data.groups]
    variance = (centered**2).sum(axis=0) / (len(x) - len(counts))
    expected = np.arange(1, 21) ** -1.2
    np.testing.assert_allclose(variance, expected, rtol=0.1)


def test_device_means_spread_with_beta():
    def spread(beta):
        data = Synthetic(beta=beta, devices=30, seed=8).load()
        means = np.array([data.x_train[data.groups == k, 0].mean() for k in range(30)])
        return means.std()

    assert spread(0.0) < 1.6 < spread(5.0)
