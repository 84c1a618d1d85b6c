"""Local step counts: fixed H, or geometric with mean H."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedgossip.errors import ConfigError
from fedgossip.settings.local_steps import FixedSteps, GeometricSteps, parse_local_steps


@pytest.mark.parametrize("value", [10, "10", " 10 "])
def test_an_integer_is_a_fixed_count(value):
    steps = parse_local_steps(value)
    assert steps == FixedSteps(10)
    assert (steps.fixed, steps.mean, steps.spec) == (10, 10.0, "10")


@pytest.mark.parametrize(
    ("text", "mean", "canonical"),
    [
        ("geometric:mean=10", 10.0, "geometric:mean=10"),
        ("geometric:mean=10.0", 10.0, "geometric:mean=10"),
        ("geometric:mean=2.5", 2.5, "geometric:mean=2.5"),
    ],
)
def test_a_geometric_spec_is_a_random_count(text, mean, canonical):
    steps = parse_local_steps(text)
    assert steps == GeometricSteps(mean)
    assert (steps.fixed, steps.mean, steps.spec) == (None, mean, canonical)
    assert parse_local_steps(steps.spec) == steps


def test_a_fixed_count_draws_itself():
    rng = np.random.default_rng(0)
    assert [parse_local_steps(7).draw(rng) for _ in range(5)] == [7] * 5


@pytest.mark.parametrize("mean", [2.0, 10.0, 3.5])
def test_geometric_draws_start_at_one_and_average_to_the_mean(mean):
    steps = parse_local_steps(f"geometric:mean={mean}")
    rng = np.random.default_rng(0)
    n = 20_000
    draws = np.array([steps.draw(rng) for _ in range(n)])
    assert draws.min() == 1
    assert all(isinstance(steps.draw(rng), int) for _ in range(3))
    # a geometric count with success probability p has variance (1 − p)/p²
    p = 1 / mean
    standard_error = math.sqrt((1 - p) / p**2 / n)
    assert abs(draws.mean() - mean) < 4 * standard_error


def test_a_geometric_mean_of_one_always_takes_one_step():
    rng = np.random.default_rng(0)
    steps = parse_local_steps("geometric:mean=1")
    assert {steps.draw(rng) for _ in range(100)} == {1}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("abc", "got 'abc'"),
        (0, "got 0"),
        ("0", "got 0"),
        (-3, "got -3"),
        (True, "got True"),
        ("1.5", "got '1.5'"),
        ("poisson:mean=3", "got 'poisson:mean=3'"),
        ("geometric", "missing required parameter 'mean'"),
        ("geometric:mean=0.5", "mean='0.5': must be >= 1"),
        ("geometric:mean=x,h=2", "unknown parameter 'h'"),
        (10**7, "got 10000000"),  # a float64 loss per step: 80 MB a round, every round
        ("geometric:mean=1e300", "mean='1e300': must be >= 1 and <= 1000000"),
    ],
)
def test_a_bad_value_says_what_is_accepted(value, problem):
    with pytest.raises(ConfigError) as caught:
        parse_local_steps(value)
    message = str(caught.value)
    expected = "local-steps must be a positive integer or geometric:mean=H (1 <= H <= 1,000,000)"
    assert message.startswith(expected)
    assert problem in message
