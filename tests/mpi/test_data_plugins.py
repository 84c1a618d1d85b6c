"""Training-time plugins in real runs: importance filtering and quantized data sharing under mpiexec."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedgossip.plugins.sample_packets import message_size
from fedgossip.records import read_metrics, read_run_json

_SHORT = ["--rounds", "6", "--eval-every", "3", "--batch-size", "16"]


def _summary(run):
    return json.loads((run / "summary.json").read_text())


def test_filter_hides_samples_and_trains_on_fewer(mpirun, fedgossip, tmp_path, summary_screen):
    base = mpirun(4, *fedgossip, "train", *_SHORT, "--local-epochs", "1", "--name", "plain")
    assert base.returncode == 0, base.output
    spec = "hide:fraction=0.5,threshold=0.5"
    done = mpirun(4, *fedgossip, "train", *_SHORT, "--local-epochs", "1", "--filter", spec, "--name", "hide")
    assert done.returncode == 0, done.output
    plain, hidden = tmp_path / "results" / "plain", tmp_path / "results" / "hide"
    record = read_run_json(hidden)
    assert record["config"]["filter"].startswith("hide:fraction=0.5")
    assert [p["name"] for p in record["plugins"]] == ["hide"]
    metrics = read_metrics(hidden)
    fraction = metrics["hidden_fraction"][-1]
    assert np.all(fraction > 0) and np.all(fraction <= 0.5)
    assert np.all(metrics["filter_skipped_steps"][-1] > 0)
    # the same rounds of one epoch each: hiding samples must mean training on fewer of them
    processed = metrics["samples_processed"][-1].sum()
    assert processed < read_metrics(plain)["samples_processed"][-1].sum()
    assert _summary(hidden)["communication"]["samples_processed_total"] == processed
    shown = summary_screen(hidden)
    assert "filter" in shown and "hidden fraction" in shown and "samples processed" in shown


def test_shared_data_is_counted_apart_from_the_model(mpirun, fedgossip, tmp_path, summary_screen):
    base = mpirun(4, *fedgossip, "train", *_SHORT, "--name", "plain")
    assert base.returncode == 0, base.output
    share = "budget=8,bits=4,every=4"
    done = mpirun(4, *fedgossip, "train", *_SHORT, "--share-data", share, "--name", "share")
    assert done.returncode == 0, done.output
    plain, shared = tmp_path / "results" / "plain", tmp_path / "results" / "share"
    metrics = read_metrics(shared)
    # a ring of 4: two neighbours each, one message to each at the start and at round 5 (every 4)
    one = message_size(8, 64, 4, 10)
    np.testing.assert_array_equal(metrics["data_bytes_sent"][-1], [2 * 2 * one] * 4)
    np.testing.assert_array_equal(metrics["data_bytes_received"][-1], [2 * 2 * one] * 4)
    np.testing.assert_array_equal(metrics["shared_samples"][-1], [16] * 4)
    # model traffic is what it was without sharing: data bytes are labelled apart, never mixed in
    np.testing.assert_array_equal(metrics["bytes_sent"], read_metrics(plain)["bytes_sent"])
    summary = _summary(shared)
    assert summary["communication"]["data_bytes_sent_total"] == 4 * 2 * 2 * one
    shown = summary_screen(shared)
    assert "shared data" in shown and "raw samples" in shown


@pytest.mark.parametrize(
    "options, message",
    [
        (["--share-data", "budget=8", "--dp", "dp-sgd:clip=1,noise=1"], "no differential-privacy guarantee"),
        (["--share-data", "budget=8", "--algorithm", "swarm", "--async"], "drop --async"),
        (["--filter", "hide:fraction=0.3", "--algorithm", "comp-ams"], "comp-ams"),
        (["--filter", "share-data:budget=8"], "not a filter"),
        (["--filter", "hide:fraction=2"], "fraction"),
        (["--plugin", "nosuch"], "unknown"),
    ],
)
def test_bad_plugin_settings_stop_every_rank(mpirun, fedgossip, tmp_path, options, message):
    done = mpirun(2, *fedgossip, "train", "--rounds", "1", *options, timeout=120)
    assert done.returncode == 1, done.output
    assert message in done.output
    assert done.output.count("error:") == 1  # one message, printed once by rank 0
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
