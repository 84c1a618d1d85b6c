"""``fg.Run`` and ``fg.runs`` read run directories: status, settings, metrics by name, summary."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fedgossip as fg


@pytest.fixture(scope="module")
def results(digits4, tmp_path_factory):
    """Return a results folder with two finished runs of 2 and 3 rounds."""
    out = tmp_path_factory.mktemp("results")
    for rounds in (2, 3):
        fg.train(
            fg.TrainConfig(
                data=str(digits4), rounds=rounds, eval_every=1, local_steps=2, out=str(out), name=f"r{rounds}"
            )
        )
    return out


def test_metrics_are_numpy_arrays_by_name_with_their_axes(results):
    run = fg.Run(results / "r3")
    metrics = run.metrics
    np.testing.assert_array_equal(metrics["round"], [1, 2, 3])
    assert metrics["wall_time"].shape == (3,) and np.all(np.diff(metrics["wall_time"]) > 0)
    accuracy = metrics["test_accuracy"]
    assert accuracy.shape == (3, 4) and np.all((accuracy >= 0) & (accuracy <= 1))
    # cumulative bytes per node grow every round
    assert np.all(np.diff(metrics["bytes_sent"], axis=0) > 0)
    # the summary's final mean accuracy is the mean over the nodes of the last row
    assert run.summary["final"]["test_accuracy"]["mean"] == pytest.approx(accuracy[-1].mean())


def test_an_unknown_metric_names_the_recorded_ones(results):
    with pytest.raises(KeyError, match=r"no metric 'accuracy'; recorded: .*test_accuracy"):
        fg.Run(results / "r2").metrics["accuracy"]


def test_config_and_status_come_from_run_json(results):
    run = fg.Run(results / "r2")
    saved = json.loads((results / "r2" / "run.json").read_text())
    assert run.status == saved["status"] == "completed"
    assert run.config == saved["config"] and run.config["rounds"] == 2
    run.config["rounds"] = 99  # a copy: the run is not changed by it
    assert run.config["rounds"] == 2


def test_runs_lists_the_run_directories_oldest_name_first(results):
    (results / "not-a-run").mkdir()
    found = fg.runs(results)
    assert [run.name for run in found] == ["r2", "r3"]
    assert [run.summary["final"]["round"] for run in found] == [2, 3]


def test_a_path_that_is_not_a_run_directory_is_one_clear_error(tmp_path):
    with pytest.raises(fg.DataError, match="is not a run directory"):
        fg.Run(tmp_path / "nowhere")
    with pytest.raises(fg.DataError, match=r"run\.json is missing"):
        fg.Run(tmp_path)
    with pytest.raises(fg.DataError, match="is not a directory"):
        fg.runs(tmp_path / "nowhere")
