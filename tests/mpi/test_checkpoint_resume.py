"""Checkpoints under a real mpiexec: a killed or preempted run resumes and ends as if never stopped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import mpiexec_path, rank_pids

from fedgossip.records import read_metrics, read_run_json, update_run_status
from fedgossip.records.checkpoint import latest_checkpoint

# Everything but wall-clock figures must repeat exactly after a resume.
_TIMED = {"wall_time", "compute_s", "comm_s", "codec_s", "link_s", "idle_s", "filter_saved_s"}


def _start(tmp_path: Path, ranks: int, *options: str) -> subprocess.Popen:
    command = [mpiexec_path(), "-n", str(ranks), sys.executable, "-m", "fedgossip", "train", *options]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(job: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    try:
        out, err = job.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        job.kill()
        pytest.fail("the job hung")
    return job.returncode, out + err


def _wait_for(condition, job: subprocess.Popen, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert job.poll() is None, f"the job ended before {what}: {job.communicate()}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.1)


def _checkpointed_round(run: Path) -> int:
    try:
        info = latest_checkpoint(run)
    except Exception:  # being written: look again
        return 0
    return 0 if info is None else info.round


def _assert_same_metrics(resumed: Path, reference: Path) -> None:
    got, want = read_metrics(resumed), read_metrics(reference)
    assert set(got) == set(want)
    for name in sorted(set(want) - _TIMED):
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


_RUN = [
    "--rounds", "24", "--eval-every", "2", "--checkpoint-every", "3",
    "--compressor", "qsgd:bits=5", "--local-steps", "geometric:mean=4",
    "--slowdown", "fixed:factor=6",
]  # fmt: skip


def test_a_killed_run_resumes_to_the_metrics_of_an_uninterrupted_one(tmp_path):
    # CHOCO-gossip with stochastic 4-bit codes and random step counts: public copies, codec keys
    # and the steps generator must all come back exactly
    reference = _start(tmp_path, 4, *_RUN, "--name", "reference")
    code, output = _finish(reference)
    assert code == 0, output
    run = tmp_path / "results" / "killed"
    job = _start(tmp_path, 4, *_RUN, "--name", "killed")
    _wait_for(lambda: _checkpointed_round(run) >= 6, job, "a checkpoint at round 6")
    killed_at = time.monotonic()
    os.kill(max(rank_pids("killed")), signal.SIGKILL)
    code, output = _finish(job, timeout=120)
    ended_after = time.monotonic() - killed_at
    assert code != 0
    print(f"SIGKILL of one rank to job exit: {ended_after:.2f} s")
    deadline = time.monotonic() + 30  # the guardian marks the run once rank 0 is gone
    while read_run_json(run)["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    record = read_run_json(run)
    assert record["status"] == "failed"
    checkpoint = latest_checkpoint(run)
    assert record["checkpoint"]["round"] == checkpoint.round >= 6
    assert len(read_metrics(run)["round"]) >= checkpoint.evaluations  # metrics up to it are readable
    code, output = _finish(_start(tmp_path, 4, "--resume", str(run)))
    assert code == 0, output
    record = read_run_json(run)
    assert record["status"] == "completed" and record["resumed"][-1]["round"] == checkpoint.round
    _assert_same_metrics(run, tmp_path / "results" / "reference")


def test_sigterm_checkpoints_at_the_next_round_and_resume_completes(tmp_path):
    options = ["--rounds", "40", "--eval-every", "4", "--slowdown", "fixed:factor=20", "--name", "slurm"]
    run = tmp_path / "results" / "slurm"
    job = _start(tmp_path, 4, *options)
    _wait_for(lambda: (run / "metrics.h5").exists(), job, "the first evaluation")
    for pid in rank_pids("slurm"):  # as Slurm does: every task of the step gets SIGTERM
        os.kill(pid, signal.SIGTERM)
    code, output = _finish(job, timeout=120)
    assert code == 75, output
    assert "--resume" in output
    record = read_run_json(run)
    assert record["status"] == "preempted"
    stopped = record["preempted_round"]
    assert 4 <= stopped < 40 and record["checkpoint"]["round"] == stopped
    code, output = _finish(_start(tmp_path, 4, "--resume", str(run)))
    assert code == 0, output
    metrics = read_metrics(run)
    np.testing.assert_array_equal(metrics["round"], np.arange(4, 41, 4))  # no row lost, none twice
    assert read_run_json(run)["status"] == "completed"


@pytest.mark.parametrize(
    "ranks, extra, message",
    [
        (2, [], "it ran on 4 ranks, this job has 2"),
        (4, ["--lr", "0.5"], "drop --lr"),
    ],
)
def test_a_resume_that_would_not_be_the_same_run_is_refused(tmp_path, ranks, extra, message):
    code, output = _finish(_start(tmp_path, 4, "--rounds", "6", "--checkpoint-every", "2", "--name", "r"))
    assert code == 0, output
    run = tmp_path / "results" / "r"
    # a completed run is refused first of all; mark it preempted to reach the other checks
    update_run_status(run, "preempted")
    code, output = _finish(_start(tmp_path, ranks, "--resume", str(run), *extra))
    assert code == 1, output
    assert message in output and output.count("error:") == 1


def test_a_corrupted_checkpoint_is_named_and_nothing_is_trained(tmp_path):
    code, output = _finish(_start(tmp_path, 2, "--rounds", "6", "--checkpoint-every", "2", "--name", "c"))
    assert code == 0, output
    run = tmp_path / "results" / "c"
    update_run_status(run, "failed", error="test")
    rank_file = next((run / "checkpoints").glob("round-*/rank-00001.pt"))
    data = bytearray(rank_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    rank_file.write_bytes(bytes(data))
    code, output = _finish(_start(tmp_path, 2, "--resume", str(run)))
    assert code == 1, output
    assert "rank-00001.pt" in output and "corrupted" in output
    assert read_run_json(run)["status"] != "completed"


def test_a_tampered_world_size_in_latest_json_is_refused_and_nothing_is_trained(tmp_path):
    code, output = _finish(_start(tmp_path, 2, "--rounds", "4", "--checkpoint-every", "2", "--name", "w"))
    assert code == 0, output
    original = tmp_path / "results" / "w"
    update_run_status(original, "failed", error="test")
    # world_size edited with its hashes, so that latest.json is consistent in itself
    tampers = {
        "three": (lambda r: r.update(world_size=3, hashes=[*r["hashes"], r["hashes"][0]]), "says 3 ranks"),
        "one": (lambda r: r.update(world_size=1, hashes=r["hashes"][:1]), "also holds rank-00001.pt"),
    }
    for name, (tamper, message) in tampers.items():
        run = Path(shutil.copytree(original, tmp_path / "results" / name))
        latest = run / "checkpoints" / "latest.json"
        record = json.loads(latest.read_text())
        tamper(record)
        latest.write_text(json.dumps(record))
        code, output = _finish(_start(tmp_path, 2, "--resume", str(run)))
        assert code == 1, output
        assert str(latest) in output and message in output and output.count("error:") == 1, output
        assert "Traceback" not in output and read_run_json(run)["status"] == "failed"


def test_an_async_run_resumes_from_a_consistent_cut(tmp_path):
    # a slowed rank makes the others wait at each cut, so the kill lands between cuts
    options = [
        "--algorithm", "swarm", "--async", "--rounds", "30", "--eval-every", "5", "--checkpoint-every", "6",
        "--compressor", "qsgd:bits=5", "--slowdown", "ranks=0:factor=30", "--name", "gossip",
    ]  # fmt: skip
    run = tmp_path / "results" / "gossip"
    job = _start(tmp_path, 4, *options)
    _wait_for(lambda: _checkpointed_round(run) >= 6, job, "a checkpoint at interaction 6")
    os.kill(max(rank_pids("gossip")), signal.SIGKILL)
    code, output = _finish(job, timeout=120)
    assert code != 0
    deadline = time.monotonic() + 30
    while read_run_json(run)["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    cut = latest_checkpoint(run).round
    code, output = _finish(_start(tmp_path, 4, "--resume", str(run)))
    assert code == 0, output
    metrics = read_metrics(run)
    np.testing.assert_array_equal(metrics["round"], [5, 10, 15, 20, 25, 30])
    # at the cut every offer was answered, so every rank ends with exactly its 30 interactions
    np.testing.assert_array_equal(metrics["interactions"][-1], [30] * 4)
    assert read_run_json(run)["resumed"][-1]["round"] == cut
