"""TrainConfig: command line over TOML over defaults, and every problem reported at once."""

import re

import pytest

from fedgossip.errors import ConfigError
from fedgossip.settings.config import TrainConfig, load_toml, merge_config


def test_command_line_beats_toml_beats_defaults(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('rounds = 4\nlr = 0.05\nlocal-steps = 3\nalgorithm = "swarm"\n')
    config = merge_config({"rounds": 9}, load_toml(path))
    assert (config.rounds, config.lr, config.local_steps, config.algorithm) == (9, 0.05, 3, "swarm")
    assert config.batch_size == TrainConfig().batch_size


def test_unknown_toml_setting_lists_the_known_ones(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("learning_rate = 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown settings learning_rate; known: .*lr"):
        load_toml(path)


def test_malformed_toml_is_a_config_error(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("rounds = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(path)


def test_every_problem_is_reported():
    with pytest.raises(ConfigError) as info:
        TrainConfig(rounds=0, lr=-1.0, local_steps=2, local_epochs=1, optimizer="lion", client_fraction=0)
    message = str(info.value)
    for fragment in (
        "rounds must be",
        "lr must be",
        "not both",
        "unknown optimizer 'lion'",
        "client-fraction",
    ):
        assert fragment in message


def test_steps_per_round_defaults_to_ten_and_epochs_replace_steps():
    assert TrainConfig().specs.local_steps.fixed == 10
    assert TrainConfig(local_steps=3).specs.local_steps.fixed == 3
    assert TrainConfig(local_steps="geometric:mean=4").specs.local_steps.mean == 4
    assert TrainConfig(local_epochs=2).specs.local_steps is None


def test_an_algorithms_defaults_sit_below_toml_and_command_line(tmp_path):
    defaults = {"optimizer": "amsgrad", "lr": 0.001}
    assert merge_config({"algorithm": "comp-ams"}, {}, defaults).optimizer == "amsgrad"
    path = tmp_path / "run.toml"
    path.write_text("lr = 0.01\n")
    config = merge_config({"optimizer": "amsgrad:beta2=0.99"}, load_toml(path), defaults)
    assert (config.optimizer, config.lr) == ("amsgrad:beta2=0.99", 0.01)


def test_optimizer_spec_parameters_are_checked_with_the_config():
    with pytest.raises(ConfigError, match=r"beta2='1\.5': must be >= 0 and < 1"):
        TrainConfig(optimizer="amsgrad:beta2=1.5")
    with pytest.raises(ConfigError, match=r"unknown parameter 'beta1' \(parameters of sgd: none\)"):
        TrainConfig(optimizer="sgd:beta1=0.9")


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("local_steps", 2.5, "local-steps must be a positive integer or geometric:mean=H, got 2.5"),
        ("slowdown", 2, "slowdown must be a spec in quotes, got 2"),
        ("link", 10, "link must be a spec in quotes, got 10"),
    ],
)
def test_a_toml_value_of_the_wrong_type_is_reported_not_a_crash(setting, value, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        TrainConfig(**{setting: value})
