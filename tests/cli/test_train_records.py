"""What a small ``fedgossip train`` run leaves in its directory, and says, run in-process as one rank."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner

import fedgossip.run.records
from fedgossip.cli.main import cli
from fedgossip.data.create import PartitionRequest, create_partition
from fedgossip.data.shards import Partition
from fedgossip.records import read_run_json, update_run_status


@pytest.fixture(scope="module")
def one_shard(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("records") / "digits-1"
    create_partition(PartitionRequest("digits", "iid", 1, 0), directory)
    return directory


@pytest.fixture
def train(tmp_path, monkeypatch, one_shard):
    """Return ``run(*options)``: ``fedgossip train`` on the one-shard partition into tmp_path/results."""
    monkeypatch.setenv("COLUMNS", "80")
    # the guardian would outlive the test, waiting for pytest to end
    monkeypatch.setattr(fedgossip.run.records, "start_guardian", lambda *args, **kwargs: None)

    def run(*options: str):
        args = ["--data", str(one_shard), "--eval-every", "1", "--out", str(tmp_path / "results")]
        resuming = options[0] == "--resume"  # the run's own settings, then
        command = ["train", *([] if resuming else args), *options]
        result = CliRunner().invoke(cli, command, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    return run


def test_a_run_without_checkpoints_keeps_no_checkpoints_folder(train, tmp_path):
    train("--rounds", "1", "--local-steps", "2", "--name", "plain")
    run = tmp_path / "results" / "plain"
    assert read_run_json(run)["status"] == "completed"
    assert not (run / "checkpoints").exists()


def test_the_checkpoints_folder_appears_with_the_first_checkpoint(train, tmp_path):
    train("--rounds", "3", "--local-steps", "2", "--checkpoint-every", "1", "--name", "saved")
    assert (tmp_path / "results" / "saved" / "checkpoints" / "latest.json").is_file()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ((), {"mean": 10.0, "min": 10, "max": 10, "drawn": False, "epochs": None}),  # the default
        (("--local-steps", "3"), {"mean": 3.0, "min": 3, "max": 3, "drawn": False, "epochs": None}),
        (("--local-steps", "geometric:mean=4"), {"mean": 4.0, "min": 1, "max": None, "drawn": True}),
    ],
)
def test_run_json_records_the_local_steps_used(train, tmp_path, options, expected):
    train("--rounds", "1", *options, "--name", "steps")
    record = read_run_json(tmp_path / "results" / "steps")
    assert {key: record["local_steps"][key] for key in expected} == expected


def test_run_json_records_the_local_steps_local_epochs_make(train, tmp_path, one_shard):
    train("--rounds", "1", "--local-epochs", "2", "--batch-size", "64", "--name", "epochs")
    record = read_run_json(tmp_path / "results" / "epochs")
    steps = 2 * math.ceil(Partition(one_shard).manifest.shards[0].size / 64)
    assert record["config"]["local_steps"] is None  # the config keeps what was given, and parses back
    assert record["local_steps"] == {"mean": steps, "min": steps, "max": steps, "drawn": False, "epochs": 2}


def test_resume_says_the_round_it_resumes_from(train, tmp_path):
    train("--rounds", "3", "--local-steps", "2", "--checkpoint-every", "1", "--name", "again")
    run = tmp_path / "results" / "again"
    update_run_status(run, "failed", error="killed", failed_round=3)
    result = train("--resume", str(run))
    assert f"resuming {run} from round 2, its last complete checkpoint, to round 3" in result.output
