"""RDP accountant: the same ε as Opacus's RDPAccountant, and the bookkeeping around it."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from fedgossip.privacy.accountant import (
    DEFAULT_ORDERS,
    RdpAccountant,
    _log_a_fractional,
    default_delta,
    epsilon_from_rdp,
    rdp_of_step,
)

# (noise σ, rate q, steps, δ)
SETTINGS = [
    (1.0, 0.01, 1000, 1e-5),
    (0.5, 0.1, 100, 1e-6),
    (2.0, 0.004, 10000, 1e-5),
    (1.1, 1.0, 10, 1e-5),
    (0.8, 0.25, 37, 1e-3),
    (4.0, 0.5, 5, 1e-5),
]


def _opacus_epsilon(history: list[tuple[float, float, int]], delta: float) -> float:
    accountants = pytest.importorskip("opacus.accountants")
    reference = accountants.RDPAccountant()
    reference.history.extend(history)
    with warnings.catch_warnings():  # Opacus warns when the best order is at the end of the range
        warnings.simplefilter("ignore")
        return reference.get_epsilon(delta=delta)


def test_default_orders_are_opacus_defaults():
    accountants = pytest.importorskip("opacus.accountants")
    assert list(DEFAULT_ORDERS) == [float(a) for a in accountants.RDPAccountant.DEFAULT_ALPHAS]


@pytest.mark.parametrize(("noise", "rate", "steps", "delta"), SETTINGS)
def test_epsilon_equals_opacus(noise, rate, steps, delta):
    accountant = RdpAccountant()
    accountant.spend(noise, rate, steps)
    expected = _opacus_epsilon([(noise, rate, steps)], delta)
    assert accountant.epsilon(delta) == pytest.approx(expected, rel=1e-6)


def test_composed_settings_equal_opacus():
    accountant = RdpAccountant()
    accountant.spend(1.0, 0.01, 300)
    accountant.spend(0.7, 0.05, 40)
    accountant.spend(1.0, 0.01, 200)  # merged with the first charge
    expected = _opacus_epsilon([(1.0, 0.01, 300), (0.7, 0.05, 40), (1.0, 0.01, 200)], 1e-5)
    assert accountant.epsilon(1e-5) == pytest.approx(expected, rel=1e-6)
    assert accountant.steps == 540


@pytest.mark.parametrize(("noise", "rate"), [(s[0], s[1]) for s in SETTINGS] + [(0.3, 0.999), (10.0, 1e-4)])
def test_rdp_of_step_equals_opacus_compute_rdp(noise, rate):
    analysis = pytest.importorskip("opacus.accountants.analysis.rdp")
    orders = [*DEFAULT_ORDERS, 1.05, 2.5, 7.25, 100.0, 128.0]  # fractional and integer, beyond the defaults
    expected = analysis.compute_rdp(q=rate, noise_multiplier=noise, steps=1, orders=orders)
    # atol: where ε_α is ~1e-15, both sides are log(1 + tiny) rounded to float64.
    np.testing.assert_allclose(rdp_of_step(rate, noise, orders), expected, rtol=1e-6, atol=1e-12)


def test_rdp_of_step_edge_cases():
    assert np.all(rdp_of_step(0.0, 0.0) == 0)  # nobody sampled: nothing leaks, noise or not
    assert np.all(np.isinf(rdp_of_step(0.1, 0.0)))
    np.testing.assert_allclose(rdp_of_step(1.0, 2.0, [2.0, 3.5]), [2.0 / 8, 3.5 / 8])


def test_rdp_of_step_returns_a_fresh_array():
    first = rdp_of_step(0.02, 1.3)
    first[:] = -1.0
    assert np.all(rdp_of_step(0.02, 1.3) > 0)


def test_epsilon_after_equals_spending_and_keeps_the_state():
    accountant = RdpAccountant()
    accountant.spend(1.2, 0.02, 50)
    before = accountant.epsilon(1e-5)
    predicted = accountant.epsilon_after(0.9, 0.05, 20, 1e-5)
    assert accountant.epsilon(1e-5) == before
    assert accountant.steps == 50
    accountant.spend(0.9, 0.05, 20)
    assert accountant.epsilon(1e-5) == pytest.approx(predicted, rel=1e-12)
    assert predicted > before


@pytest.mark.parametrize(
    ("smaller", "bigger"),
    [
        ((1.0, 0.01, 100), (1.0, 0.01, 101)),  # one more step
        ((1.0, 0.01, 100), (1.0, 0.02, 100)),  # bigger rate
        ((1.0, 0.01, 100), (0.9, 0.01, 100)),  # less noise
        ((3.0, 0.3, 7), (3.0, 1.0, 7)),
        ((0.6, 0.5, 1), (0.6, 0.5, 2)),
        ((8.0, 0.001, 1), (2.0, 0.001, 1)),
    ],
)
@pytest.mark.parametrize("delta", [1e-6, 1e-3])
def test_more_privacy_loss_never_lowers_epsilon(smaller, bigger, delta):
    low, high = RdpAccountant(), RdpAccountant()
    low.spend(*smaller)
    high.spend(*bigger)
    assert 0 < low.epsilon(delta) <= high.epsilon(delta)


def test_no_noise_gives_infinite_epsilon():
    accountant = RdpAccountant()
    accountant.spend(0.0, 0.1, 1)
    assert accountant.epsilon(1e-5) == math.inf


@pytest.mark.parametrize("noise", [1e-300, 1e-161, 1e-120])
def test_negligible_noise_gives_infinite_epsilon(noise):
    # At 1e-300 (σ² underflows) and 1e-161 (the terms overflow) the fractional series ran for ever.
    accountant = RdpAccountant()
    accountant.spend(noise, 0.1, 1)
    assert accountant.epsilon(1e-5) == math.inf


def test_the_smallest_noise_still_summed_gives_a_finite_epsilon():
    accountant = RdpAccountant()
    accountant.spend(1e-99, 0.1, 1)
    assert 1e150 < accountant.epsilon(1e-5) < math.inf


@pytest.mark.timeout(60)  # the failure this guards against is a loop that never ends
def test_a_series_with_terms_beyond_float64_stops_with_an_error():
    # Below the negligible noise, but called directly: its terms are NaN and could never fall below the stop.
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(ArithmeticError, match="beyond float64"):
        _log_a_fractional(0.1, 1e-161, np.array([1.5, 2.5]))


def test_nothing_spent_or_nobody_sampled_costs_nothing():
    accountant = RdpAccountant()
    assert accountant.epsilon(1e-5) == 0.0
    accountant.spend(1.0, 0.0, 1000)
    accountant.spend(1.0, 0.5, 0)
    assert accountant.epsilon(1e-5) == 0.0
    assert accountant.steps == 1000


def test_state_dict_round_trip_gives_the_same_epsilon():
    accountant = RdpAccountant()
    accountant.spend(1.0, 0.01, 300)
    accountant.spend(0.7, 0.05, 40)
    accountant.spend(1.0, 0.01, 200)
    state = accountant.state_dict()
    assert state["history"] == [[1.0, 0.01, 500], [0.7, 0.05, 40]]
    restored = RdpAccountant()
    restored.load_state_dict(state)
    assert restored.epsilon(1e-5) == pytest.approx(accountant.epsilon(1e-5), rel=1e-12)
    assert restored.steps == 540
    assert restored.state_dict() == state


def test_load_state_dict_names_wrong_keys():
    state = RdpAccountant().state_dict()
    state["mechanism"] = state.pop("history")
    with pytest.raises(ValueError, match=r"missing keys \['history'\].*unexpected keys \['mechanism'\]"):
        RdpAccountant().load_state_dict(state)


def test_load_state_dict_refuses_other_orders():
    state = RdpAccountant(orders=[2.0, 4.0]).state_dict()
    with pytest.raises(ValueError, match="other orders"):
        RdpAccountant().load_state_dict(state)


def test_spend_reports_every_bad_argument():
    with pytest.raises(ValueError, match=r"noise must be .*; rate must be .*; steps must be"):
        RdpAccountant().spend(-1.0, 1.5, -2)
    with pytest.raises(ValueError, match="steps must be an integer"):
        RdpAccountant().spend(1.0, 0.1, 2.5)


@pytest.mark.parametrize("delta", [0.0, 1.0, -1e-5])
def test_delta_must_be_in_open_unit_interval(delta):
    with pytest.raises(ValueError, match="delta"):
        RdpAccountant().epsilon(delta)


def test_epsilon_from_rdp_all_nan_is_infinite():
    eps, order = epsilon_from_rdp(np.full(len(DEFAULT_ORDERS), np.nan), 1e-5)
    assert eps == math.inf
    assert math.isnan(order)


@pytest.mark.parametrize(
    ("samples", "delta"),
    [(1, 1e-5), (50, 1e-5), (100_000, 1e-5), (200_000, 5e-6), (1_000_000, 1e-6)],
)
def test_default_delta_is_min_of_1e5_and_one_over_n(samples, delta):
    assert default_delta(samples) == pytest.approx(delta, rel=1e-15)
