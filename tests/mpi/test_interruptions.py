"""Ctrl-C and a killed rank end the whole job, never hang it, and leave run.json marked failed."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import mpiexec_path, rank_of, rank_pids

from fedgossip.records import read_run_json


def _start(tmp_path: Path, name: str) -> subprocess.Popen:
    command = [mpiexec_path(), "-n", "4", sys.executable, "-m", "fedgossip", "train", "--rounds", "5000",
               "--eval-every", "1", "--name", name]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_training(tmp_path: Path, name: str, job: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180
    while not (tmp_path / "results" / name / "metrics.h5").exists():
        assert job.poll() is None, job.communicate()
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.2)


@pytest.mark.parametrize("how", ["ctrl-c", "kill-one-rank"])
def test_job_ends_and_run_is_marked_failed(tmp_path, how):
    name = f"interrupted-{how}"
    job = _start(tmp_path, name)
    _wait_for_training(tmp_path, name, job)
    if how == "ctrl-c":
        job.send_signal(signal.SIGINT)  # mpiexec forwards it to the ranks, as a terminal's Ctrl-C does
    else:
        victim = max(rank_pids(name))
        killed_rank = rank_of(victim)
        os.kill(victim, signal.SIGKILL)
    try:
        job.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        job.kill()
        pytest.fail(f"the job hung after {how}")
    assert job.returncode != 0
    deadline = time.monotonic() + 30  # ranks and the guardian finish within moments of mpiexec
    while (rank_pids(name) or read_run_json(tmp_path / "results" / name)["status"] == "running") and (
        time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert rank_pids(name) == []
    record = read_run_json(tmp_path / "results" / name)
    assert record["status"] == "failed"
    if how == "ctrl-c":
        assert record["failed_round"] >= 1 and "interrupted" in record["error"]
    else:  # the rank killed, not rank 0 that MPI's launcher ended next, and the round it died in
        assert killed_rank != 0
        assert record["error"].startswith(f"rank {killed_rank} ended abruptly in round "), record["error"]
        assert record["failed_round"] >= 1
