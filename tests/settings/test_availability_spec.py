"""``--availability`` specs: parsing, the schedules they draw, and every refusal."""

from __future__ import annotations

import numpy as np
import pytest

from fedgossip.errors import ConfigError
from fedgossip.settings.availability_spec import (
    AlwaysAvailable,
    BernoulliAvailability,
    MarkovAvailability,
    TraceAvailability,
    parse_availability,
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("always", AlwaysAvailable()),
        ("bernoulli:p=0.7", BernoulliAvailability(p=0.7)),
        ("bernoulli:p=1", BernoulliAvailability(p=1.0)),
        ("markov:online=4,offline=2", MarkovAvailability(online=4.0, offline=2.0)),
        ("trace:path=t.csv", TraceAvailability(path="t.csv")),
    ],
)
def test_specs_parse_and_round_trip(spec, expected):
    parsed = parse_availability(spec)
    assert parsed == expected
    assert parse_availability(parsed.spec) == parsed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bernoulli:p=0", "must be > 0 and <= 1"),
        ("bernoulli:p=1.5", "must be > 0 and <= 1"),
        ("bernoulli", "p"),
        ("markov:online=0,offline=2", "must be >= 1"),
        ("markov:online=3,offline=-1", "must be >= 1"),
        ("sometimes", "unknown kind 'sometimes'"),
    ],
)
def test_bad_specs_are_one_error_naming_the_forms(spec, message):
    with pytest.raises(ConfigError, match="accepted forms") as caught:
        parse_availability(spec)
    assert message in str(caught.value)


def test_always_is_all_online():
    assert AlwaysAvailable().schedule(5, 7, seed=3).all()


def test_bernoulli_online_fraction_matches_p():
    p, nodes, rounds = 0.7, 200, 200
    mask = BernoulliAvailability(p=p).schedule(nodes, rounds, seed=11)
    standard_error = np.sqrt(p * (1 - p) / mask.size)
    assert abs(mask.mean() - p) < 5 * standard_error
    # independent across nodes: node pairs' joint online fraction is p², not p
    joint = (mask[:, 0::2] & mask[:, 1::2]).mean()
    assert abs(joint - p * p) < 5 * np.sqrt(p * p * (1 - p * p) / (mask.size / 2))


def test_schedules_depend_on_the_seed_alone():
    spec = BernoulliAvailability(p=0.5)
    assert np.array_equal(spec.schedule(8, 30, seed=4), spec.schedule(8, 30, seed=4))
    assert not np.array_equal(spec.schedule(8, 30, seed=4), spec.schedule(8, 30, seed=5))


def _spells(column: np.ndarray, value: bool) -> list[int]:
    """Lengths of the complete runs of ``value`` in ``column`` (runs cut by either end left out)."""
    edges = np.flatnonzero(np.diff(column.astype(np.int8))) + 1
    runs = np.split(column, edges)[1:-1]
    return [len(run) for run in runs if run[0] == value]


def test_markov_mean_spells_match_online_and_offline():
    online, offline = 4.0, 2.0
    mask = MarkovAvailability(online=online, offline=offline).schedule(50, 2000, seed=7)
    up = np.concatenate([_spells(mask[:, k], True) for k in range(50)])
    down = np.concatenate([_spells(mask[:, k], False) for k in range(50)])
    # geometric spells: variance m(m − 1)
    assert abs(up.mean() - online) < 5 * np.sqrt(online * (online - 1) / up.size)
    assert abs(down.mean() - offline) < 5 * np.sqrt(offline * (offline - 1) / down.size)
    # started stationary: round 0 is already online with probability A / (A + B)
    stationary = online / (online + offline)
    assert abs(mask[0].mean() - stationary) < 5 * np.sqrt(stationary * (1 - stationary) / 50)


def test_trace_is_followed_exactly(tmp_path):
    trace = tmp_path / "trace.csv"
    trace.write_text("node,start,end\n0,0,3\n1,2,5\n0,4,6\n2,0,100\n")
    mask = TraceAvailability(path=str(trace)).schedule(3, 6, seed=0)
    expected = np.array(
        [
            [1, 0, 1],
            [1, 0, 1],
            [1, 1, 1],
            [0, 1, 1],
            [1, 1, 1],
            [1, 0, 1],
        ],
        dtype=bool,
    )
    assert np.array_equal(mask, expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0,0,3\n5,1,2\n", "names node 5, but the run has 3 nodes"),
        ("0,0,3\n0,2,5\n", "node 0's intervals [0, 3) and [2, 5) overlap"),
        ("0,0,3\n1,x,2\n", "line 2 is '1,x,2', expected three integers >= 0"),
        ("0,0,3\n1,2\n", "line 2 is '1,2'"),
        ("0,3,3\n", "line 1: end 3 must be greater than start 3"),
        ("0,0,2\n1,3,9\n", "leaves no node online in 1 of 6 rounds (round 2)"),
    ],
)
def test_bad_traces_are_refused(tmp_path, text, message):
    trace = tmp_path / "trace.csv"
    trace.write_text(text)
    with pytest.raises(ConfigError) as caught:
        TraceAvailability(path=str(trace)).schedule(3, 6, seed=0)
    assert message in str(caught.value)


def test_missing_trace_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        TraceAvailability(path=str(tmp_path / "absent.csv")).schedule(3, 6, seed=0)


def test_a_schedule_with_an_empty_round_is_refused_up_front():
    # one node online half the time: some of 200 rounds are empty, found before any training
    with pytest.raises(ConfigError, match="leaves no node online"):
        BernoulliAvailability(p=0.5).schedule(1, 200, seed=0)
    with pytest.raises(ConfigError, match="leaves no node online"):
        MarkovAvailability(online=2, offline=2).schedule(1, 200, seed=0)
