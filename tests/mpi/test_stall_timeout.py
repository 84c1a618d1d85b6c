"""A frozen rank (SIGSTOP) no longer hangs the job: --stall-timeout ends it, naming the rank."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import mpiexec_path, rank_of, rank_pids

from fedgossip.records import read_run_json

STALL = 5  # seconds
CASES = [(2, ()), (0, ()), (1, ("--algorithm", "swarm", "--async"))]


def _start(tmp_path: Path, name: str, *options: str) -> subprocess.Popen:
    command = [mpiexec_path(), "-n", "3", sys.executable, "-m", "fedgossip", "train", "--rounds", "100000",
               "--eval-every", "5", "--stall-timeout", str(STALL), "--name", name, *options]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_progress(job: subprocess.Popen, seen: threading.Event) -> list[str]:
    """Collect the job's stdout in a thread; set ``seen`` at its first progress line."""
    lines: list[str] = []

    def read() -> None:
        for line in job.stdout:
            lines.append(line)
            if line.startswith(("round ", "interaction ")):
                seen.set()

    threading.Thread(target=read, daemon=True).start()
    return lines


@pytest.mark.parametrize(("frozen", "options"), CASES, ids=["rank-2", "rank-0", "async-rank-1"])
def test_a_frozen_rank_fails_the_job_after_the_stall_timeout(tmp_path, frozen, options):
    name = f"frozen-{frozen}"
    job = _start(tmp_path, name, *options)
    seen = threading.Event()
    stdout = _wait_for_progress(job, seen)
    victim = None
    try:
        assert seen.wait(timeout=180), f"training never started: {''.join(stdout)}"
        (victim,) = [pid for pid in rank_pids(name) if rank_of(pid) == frozen]
        os.kill(victim, signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:
            stderr = job.stderr.read() if job.wait(timeout=120) is not None else ""
        except subprocess.TimeoutExpired:
            pytest.fail("the job hung with a frozen rank")
        took = time.monotonic() - frozen_at
    finally:
        if job.poll() is None:
            job.kill()
        if victim is not None and victim in rank_pids(name):
            os.kill(victim, signal.SIGKILL)
    assert job.returncode != 0
    assert STALL <= took < 90, took
    record = read_run_json(tmp_path / "results" / name)
    assert record["status"] == "failed", record
    assert f"(--stall-timeout): rank {frozen} did not arrive" in record["error"], record["error"]
    assert record["failed_round"] >= 1
    assert f"rank {frozen} did not arrive" in stderr and "Traceback" not in stderr, stderr
