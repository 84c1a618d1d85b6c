"""``fg.train`` in-process on one rank is ``fedgossip train``: same settings, same metrics."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import fedgossip as fg
from fedgossip.cli.main import cli

OPTIONS = {"rounds": 2, "eval_every": 1, "seed": 3, "topology": "complete", "local_steps": 3}
COMPARED = ("round", "test_accuracy", "test_loss", "avg_model_accuracy", "consensus_distance", "bytes_sent")


def _cli_run(data, out, name: str) -> fg.Run:
    argv = [
        sys.executable,
        "-m",
        "fedgossip",
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        "--name",
        name,
    ]
    for key, value in OPTIONS.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return fg.Run(out / name)


def test_in_process_train_records_what_the_cli_records(digits4, tmp_path, capfd):
    from_cli = _cli_run(digits4, tmp_path, "cli")
    capfd.readouterr()
    run = fg.train(fg.TrainConfig(data=str(digits4), out=str(tmp_path), name="api", **OPTIONS))
    assert capfd.readouterr().out == ""  # the library draws nothing: rendering is the CLI's
    assert isinstance(run, fg.Run) and run.path == tmp_path / "api" and run.name == "api"
    assert run.status == from_cli.status == "completed"
    assert {k: v for k, v in run.config.items() if k != "name"} == {
        k: v for k, v in from_cli.config.items() if k != "name"
    }
    for name in COMPARED:
        np.testing.assert_array_equal(run.metrics[name], from_cli.metrics[name], err_msg=name)
    assert run.metrics["test_accuracy"].shape == (2, 4)  # [evaluations, nodes]
    # the summary it returns is the one written to summary.json, and the CLI's figures
    assert run.summary["final"] == from_cli.summary["final"]
    assert run.summary == fg.Run(run.path).summary


def test_config_applies_the_algorithm_defaults_as_the_cli_does():
    assert fg.config(algorithm="comp-ams").optimizer == "amsgrad"
    assert fg.config(algorithm="comp-ams", optimizer="adam").optimizer == "adam"
    assert fg.TrainConfig(algorithm="comp-ams").optimizer == "sgd"  # the bare dataclass: field defaults


def test_a_bad_config_raises_the_message_the_cli_prints(tmp_path):
    with pytest.raises(fg.ConfigError) as raised:
        fg.TrainConfig(local_steps=5, local_epochs=1)
    shown = CliRunner().invoke(cli, ["train", "--local-steps", "5", "--local-epochs", "1"])
    assert shown.exit_code == 1
    assert str(raised.value) in shown.output
    assert "give either --local-steps or --local-epochs, not both" in str(raised.value)


def test_train_refuses_what_is_not_a_config():
    with pytest.raises(fg.ConfigError, match="needs a config"):
        fg.train()
    with pytest.raises(fg.ConfigError, match=r"takes a TrainConfig.*got dict"):
        fg.train({"rounds": 3})


def test_a_failed_train_raises_and_leaves_garbage_collection_on(tmp_path):
    gc.enable()  # an in-process `fedgossip train` that exited 1 leaves it off: its process was to end
    with pytest.raises(fg.DataError, match="not a partition directory"):
        fg.train(fg.TrainConfig(data=str(tmp_path / "nowhere"), out=str(tmp_path / "results")))
    assert gc.isenabled()
    assert not (tmp_path / "results").exists()  # refused before a run directory was made
