"""--gamma and --client-fraction: shorthands of the algorithm's own parameters, moved into its spec."""

import re

import pytest

from fedgossip.algorithms import ALGORITHMS
from fedgossip.errors import ConfigError
from fedgossip.records.run import write_run_json
from fedgossip.run.resume import resume_config
from fedgossip.settings.config import TrainConfig
from fedgossip.specs import Spec


@pytest.mark.parametrize(
    ("settings", "spec"),
    [
        ({}, Spec("dpsgd")),
        ({"gamma": 0.5}, Spec("dpsgd", {"gamma": "0.5"})),
        ({"algorithm": "dpsgd:gamma=0.5"}, Spec("dpsgd", {"gamma": "0.5"})),
        ({"algorithm": "dpsgd:gamma=0.50", "gamma": 0.5}, Spec("dpsgd", {"gamma": "0.50"})),  # they agree
        ({"algorithm": "fedavg", "client_fraction": 0.25}, Spec("fedavg", {"client_fraction": "0.25"})),
        ({"algorithm": "fedavg", "client_fraction": 1}, Spec("fedavg", {"client_fraction": "1"})),  # TOML int
    ],
)
def test_a_shorthand_becomes_a_parameter_of_the_algorithm_spec(settings, spec):
    assert TrainConfig(**settings).specs.algorithm == spec


def test_no_shorthand_is_given_by_default():
    config = TrainConfig(algorithm="fedavg")
    assert (config.gamma, config.client_fraction) == (None, None)
    assert ALGORITHMS.create(config.specs.algorithm).client_fraction == 1.0


def test_a_shorthand_and_the_spec_disagreeing_is_refused_naming_both():
    with pytest.raises(
        ConfigError, match=r"--gamma 0.25 and --algorithm dpsgd:gamma=0.5 set gamma to different"
    ):
        TrainConfig(algorithm="dpsgd:gamma=0.5", gamma=0.25)


@pytest.mark.parametrize(
    ("setting", "value"), [("gamma", float("nan")), ("client_fraction", 0), ("gamma", True)]
)
def test_a_bad_shorthand_value_is_reported_once_by_the_config(setting, value):
    with pytest.raises(ConfigError) as info:
        TrainConfig(**{setting: value})
    assert str(info.value).count(setting.replace("_", "-")) == 1, str(info.value)


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        (
            {"algorithm": "swarm", "gamma": 0.5},
            "--gamma applies to dpsgd (CHOCO-gossip's consensus step, by default the compressor's) and gt "
            "(consensus step under a lossy code, by default the compressor's); swarm has no such setting",
        ),
        (
            {"client_fraction": 0.5},
            "--client-fraction applies to fedavg (share of clients sampled per round); "
            "dpsgd has no such setting",
        ),
    ],
)
def test_a_shorthand_for_an_algorithm_without_that_setting_names_the_option(settings, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        ALGORITHMS.create(TrainConfig(**settings).specs.algorithm)


def test_the_spec_s_other_problems_are_reported_with_a_misplaced_shorthand():
    with pytest.raises(ConfigError) as info:
        ALGORITHMS.create("allreduce:gamma=0.5,client_fraction=0.5,x=1")
    message = str(info.value)
    assert "--gamma applies to dpsgd" in message and "--client-fraction applies to fedavg" in message
    assert "unknown parameter 'x' (parameters of allreduce: none)" in message


@pytest.mark.parametrize(
    ("settings", "algorithm"),
    [({"gamma": 0.5}, "dpsgd:gamma=0.5"), ({"algorithm": "fedavg"}, "fedavg:client_fraction=1.0")],
)
def test_a_run_started_with_a_shorthand_resumes_from_its_run_json(tmp_path, settings, algorithm):
    started = TrainConfig(**settings, out=str(tmp_path))
    ran = ALGORITHMS.create(started.specs.algorithm)
    assert ran.spec == algorithm
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # run.json keeps the config with the canonical spec that ran, beside the shorthand as it was given
    write_run_json(
        run_dir,
        {
            "name": "run",
            "status": "preempted",
            "world_size": 4,
            "config": {**started.to_dict(), "algorithm": ran.spec},
        },
    )
    resumed = resume_config(run_dir, {}, world_size=4)
    assert ALGORITHMS.create(resumed.specs.algorithm).spec == algorithm
    assert (resumed.gamma, resumed.client_fraction) == (started.gamma, started.client_fraction)


@pytest.mark.parametrize(
    ("algorithm", "fraction", "expected"),
    [
        ("dpsgd", 1.0, "dpsgd"),
        ("fedavg", 0.5, "fedavg:client_fraction=0.5"),
        ("fedavg", 1.0, "fedavg:client_fraction=1.0"),
    ],
)
def test_a_run_json_of_an_earlier_version_resumes(tmp_path, algorithm, fraction, expected):
    # Earlier versions saved every run's client_fraction (the old field default 1.0) and a bare spec.
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    saved = {**TrainConfig(out=str(tmp_path)).to_dict(), "algorithm": algorithm, "client_fraction": fraction}
    write_run_json(run_dir, {"name": "run", "status": "failed", "world_size": 4, "config": saved})
    resumed = resume_config(run_dir, {}, world_size=4)
    assert ALGORITHMS.create(resumed.specs.algorithm).spec == expected
