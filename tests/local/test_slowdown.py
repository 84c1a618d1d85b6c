"""Slowdown specs: parsing, per-rank factors every rank agrees on, and the step stretcher."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedgossip.errors import ConfigError
from fedgossip.local.slowdown import StepStretcher
from fedgossip.settings.slowdown_spec import (
    FixedSlowdown,
    LognormalSlowdown,
    NoSlowdown,
    RankSlowdown,
    parse_slowdown,
)


@pytest.mark.parametrize(
    ("text", "expected", "canonical"),
    [
        ("none", NoSlowdown(), "none"),
        ("fixed:factor=3", FixedSlowdown(3.0), "fixed:factor=3.0"),
        ("lognormal:sigma=0.5", LognormalSlowdown(0.5), "lognormal:sigma=0.5"),
        ("ranks=0,5:factor=4", RankSlowdown((0, 5), 4.0), "ranks=0,5:factor=4.0"),
        ("ranks:ranks=5,0,factor=4", RankSlowdown((0, 5), 4.0), "ranks=0,5:factor=4.0"),
        (" ranks = 2 : factor=1.5 ", RankSlowdown((2,), 1.5), "ranks=2:factor=1.5"),
    ],
)
def test_each_form_parses_to_its_slowdown_and_canonical_spec(text, expected, canonical):
    slowdown = parse_slowdown(text)
    assert slowdown == expected
    assert slowdown.spec == canonical
    assert parse_slowdown(slowdown.spec) == slowdown  # the canonical spec reads back


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("gamma:k=2", ["unknown kind 'gamma'"]),
        ("lognormal:sigma=0", ["sigma='0': must be > 0"]),
        ("lognormal:sigma=-1", ["sigma='-1': must be > 0"]),
        ("lognormal", ["missing required parameter 'sigma'"]),
        ("fixed:factor=0.5", ["factor='0.5': must be >= 1"]),
        ("ranks=0,5", ["missing required parameter 'factor'"]),
        ("ranks=1,1:factor=2", ["rank 1 listed twice"]),
        ("ranks=a,-1:factor=0.5", ["ranks='a,-1': expected rank numbers", "factor='0.5': must be >= 1"]),
        ("lognormal:sigma=1,factor=2", ["unknown parameter 'factor' (parameters of lognormal: sigma)"]),
    ],
)
def test_a_bad_spec_names_every_problem_and_the_accepted_forms(text, problems):
    with pytest.raises(ConfigError) as caught:
        parse_slowdown(text)
    message = str(caught.value)
    assert message.startswith(f"slowdown {text!r}: ")
    for problem in problems:
        assert problem in message
    assert "accepted forms: none, fixed:factor=F, lognormal:sigma=S, ranks=R1,R2,...:factor=F" in message


def test_a_slowdown_built_in_code_is_checked_like_a_parsed_one():
    with pytest.raises(ConfigError, match=r"sigma='-1\.0': must be > 0"):
        LognormalSlowdown(-1.0)
    assert RankSlowdown([3, 1], 2) == RankSlowdown((1, 3), 2.0)  # stored as a spec gives them


@pytest.mark.parametrize("text", ["lognormal:sigma=1000", "lognormal:sigma=3"])
def test_a_lognormal_slowdown_beyond_the_emulated_factor_is_refused(text):
    # sigma=1000 overflows to an infinite factor, whose sleep no time_t holds; sigma=3 over 64 ranks
    # stretches the slowest beyond ten thousand times
    refusal = r"slows rank \d+ down .* beyond the 10000 emulated; choose a smaller sigma"
    with pytest.raises(ConfigError, match=refusal):
        parse_slowdown(text).factors(world_size=64, seed=0)


@pytest.mark.parametrize("text", ["fixed:factor=1e308", "ranks=0:factor=1e9"])
def test_a_fixed_factor_beyond_the_emulated_is_refused(text):
    with pytest.raises(ConfigError, match=r"factor='[^']+': must be >= 1 and <= 10000"):
        parse_slowdown(text)


def test_a_moderate_lognormal_slowdown_stays_within_the_emulated_factor():
    assert parse_slowdown("lognormal:sigma=0.5").factors(world_size=64, seed=0).max() <= 10_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("none", [1, 1, 1, 1]),
        ("fixed:factor=2.5", [2.5, 2.5, 2.5, 2.5]),
        ("ranks=0,3:factor=4", [4, 1, 1, 4]),
    ],
)
def test_deterministic_forms_give_their_factors(text, expected):
    factors = parse_slowdown(text).factors(world_size=4, seed=0)
    assert factors.dtype == np.float64
    np.testing.assert_array_equal(factors, expected)


def test_a_listed_rank_outside_the_world_names_the_rank_and_the_world_size():
    slowdown = parse_slowdown("ranks=0,5,9:factor=4")
    with pytest.raises(ConfigError, match=r"names ranks 5, 9, but the world has 4 ranks \(0 to 3\)"):
        slowdown.factors(world_size=4, seed=0)
    assert slowdown.factors(world_size=10, seed=0)[9] == 4  # in a larger world it is fine


def test_lognormal_factors_are_the_same_for_every_caller_and_seed_dependent():
    slowdown = parse_slowdown("lognormal:sigma=1")
    # every rank builds the vector on its own: a fresh object must give the same numbers
    first = slowdown.factors(world_size=16, seed=7)
    again = parse_slowdown("lognormal:sigma=1").factors(world_size=16, seed=7)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, slowdown.factors(world_size=16, seed=8))


@pytest.mark.parametrize("world_size", [1, 2, 16])
def test_lognormal_factors_are_at_least_one_and_the_fastest_is_exactly_one(world_size):
    factors = parse_slowdown("lognormal:sigma=2").factors(world_size, seed=3)
    assert factors.dtype == np.float64 and factors.shape == (world_size,)
    assert factors.min() == 1.0
    assert np.all(factors >= 1.0)


@pytest.mark.parametrize("sigma", [0.1, 1.0])
def test_lognormal_log_factors_spread_with_standard_deviation_sigma(sigma):
    n = 4000
    log_factors = np.log(parse_slowdown(f"lognormal:sigma={sigma}").factors(n, seed=0))
    # dividing by the minimum shifts the log factors, which leaves their spread alone; the
    # sample standard deviation of n normals has standard error ≈ σ / sqrt(2(n − 1))
    standard_error = sigma / math.sqrt(2 * (n - 1))
    assert abs(log_factors.std(ddof=1) - sigma) < 4 * standard_error


def test_the_stretcher_sleeps_the_missing_time_and_returns_what_passed():
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    stretcher = StepStretcher(3.0, sleep=sleep, clock=lambda: now[0])
    assert stretcher.stretch(0.25) == 0.5
    assert slept == [0.5]  # (factor − 1)·t: the step now takes 3 × 0.25 s


def test_the_stretcher_does_not_sleep_at_factor_one():
    slept = []
    stretcher = StepStretcher(1.0, sleep=slept.append)
    assert stretcher.stretch(0.25) == 0.0
    assert slept == []


@pytest.mark.parametrize("factor", [0.5, math.nan])
def test_the_stretcher_refuses_a_speedup(factor):
    with pytest.raises(ValueError, match="expecting a slowdown factor >= 1"):
        StepStretcher(factor)
