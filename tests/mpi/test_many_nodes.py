"""Many nodes per rank as a user runs them: placement in run.json and the summary, bad --nodes, resume."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fedgossip.records import read_metrics, update_run_status
from fedgossip.records.checkpoint import latest_checkpoint

TIMED = {"wall_time", "compute_s", "comm_s", "codec_s", "link_s", "idle_s", "filter_saved_s"}


@pytest.fixture(scope="module")
def digits_6(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "digits-6"
    command = [sys.executable, "-m", "fedgossip", "partition", "create", "digits", "--nodes", "6"]
    subprocess.run([*command, "--out", str(out)], check=True, capture_output=True, timeout=300)
    return out


def test_six_nodes_on_two_ranks_are_recorded_and_summarized(
    digits_6, mpirun, fedgossip, tmp_path, summary_screen
):
    done = mpirun(2, *fedgossip, "train", "--data", str(digits_6), "--rounds", "2", "--eval-every", "1",
                  "--name", "six", timeout=300)  # fmt: skip
    assert done.returncode == 0, done.output
    run = tmp_path / "results" / "six"
    record = json.loads((run / "run.json").read_text())
    # the node count comes from the partition; rank 0 hosts nodes 0-2, rank 1 nodes 3-5
    assert (record["nodes"], record["ranks"], record["placement"]) == (6, 2, [0, 3, 6])
    assert record["config"]["nodes"] == 6
    metrics = read_metrics(run)
    assert metrics["test_accuracy"].shape == (2, 6)
    # on a ring of 6 split 3 | 3, nodes 0 and 3 (and 2 and 5) talk across the ranks: 4 of 6 nodes' sends
    # are half within, nodes 1 and 4 send only within
    within, sent = metrics["bytes_within"][-1], metrics["bytes_sent"][-1]
    np.testing.assert_array_equal(within / sent, [0.5, 1.0, 0.5, 0.5, 1.0, 0.5])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["nodes"] == 6 and summary["ranks"] == 2
    assert summary["communication"]["bytes_within_share"] == pytest.approx(4 / 6)
    shown = summary_screen(run)
    assert "6 nodes on 2 ranks" in shown and "67% of sent" in shown


@pytest.mark.parametrize(
    ("ranks", "options", "message"),
    [
        (3, ("--nodes", "2"), "--nodes 2 is below the 3 ranks"),
        (2, ("--nodes", "8"), "--nodes 8 of dpsgd need 8 shards, but"),
        (2, ("--nodes", "4", "--algorithm", "fedavg"), "--nodes 4 of fedavg need 3 shards"),
    ],
)
def test_bad_nodes_stop_every_rank_with_one_message(digits_6, mpirun, fedgossip, ranks, options, message):
    done = mpirun(ranks, *fedgossip, "train", "--data", str(digits_6), *options, timeout=200)
    assert done.returncode == 1, done.output
    assert message in done.output and done.output.count("error:") == 1, done.output
    if "need" in message:
        assert "has 6" in done.output  # both numbers named


def test_seven_ranks_for_a_partition_of_six_nodes_is_refused(digits_6, mpirun, fedgossip):
    done = mpirun(7, *fedgossip, "train", "--data", str(digits_6), timeout=300)
    assert done.returncode == 1, done.output
    assert "has 6 shards" in done.output and "7 ranks were started" in done.output


@pytest.mark.parametrize(
    "plugins",
    [
        (),
        ("--share-data", "budget=4,every=2", "--filter", "hide:threshold=0.5"),  # re-shared at round 5
        ("--algorithm", "gt", "--optimizer", "qgm", "--momentum", "0.9"),  # correction, 2 copies, qgm
        ("--algorithm", "d2", "--compressor", "none"),  # the drift
        # an attacker's forged copies per neighbour, honest nodes' copies of each neighbour
        ("--attack", "dissensus", "--attackers", "1,4", "--robust", "clip"),
        ("--attack", "alie", "--attackers", "1", "--robust", "median", "--compressor", "none"),  # what it saw
    ],
    ids=["plain", "plugins", "gt-qgm", "d2", "attack-choco", "attack"],
)
def test_a_resumed_run_of_co_hosted_nodes_repeats_its_last_rounds(
    digits_6, mpirun, fedgossip, tmp_path, plugins
):
    options = ("--data", str(digits_6), "--rounds", "5", "--eval-every", "1", "--checkpoint-every", "3",
               "--compressor", "qsgd:bits=5", "--local-steps", "geometric:mean=3", "--name", "r",
               *plugins)  # fmt: skip
    done = mpirun(2, *fedgossip, "train", *options, timeout=300)
    assert done.returncode == 0, done.output
    run, reference_dir = tmp_path / "results" / "r", tmp_path / "uninterrupted"
    reference_dir.mkdir()
    shutil.copy(run / "metrics.h5", reference_dir / "metrics.h5")
    assert latest_checkpoint(run).round == 3  # so the resume trains rounds 4 and 5 again
    update_run_status(run, "failed", error="as if killed after round 4")
    done = mpirun(2, *fedgossip, "train", "--resume", str(run), timeout=300)
    assert done.returncode == 0, done.output
    resumed, reference = read_metrics(run), read_metrics(reference_dir)
    assert set(resumed) == set(reference)
    for name in sorted(set(reference) - TIMED):
        np.testing.assert_array_equal(resumed[name], reference[name], err_msg=name)
