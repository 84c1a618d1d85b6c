"""The guardian marks a run failed when its process vanishes while the run says running."""

import os
import subprocess
import sys
import time

import pytest

from fedgossip.records import read_run_json, write_run_json
from fedgossip.records.guardian import start_guardian


def _run(tmp_path, status):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_run_json(run_dir, {"format_version": 1, "name": "run", "status": status, "error": None})
    return run_dir


@pytest.mark.parametrize(("status", "expected"), [("running", "failed"), ("completed", "completed")])
def test_guardian_records_only_an_unannounced_death(tmp_path, status, expected):
    run_dir = _run(tmp_path, status)
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    guardian = start_guardian(run_dir, victim.pid)
    if guardian is None:
        pytest.skip("needs os.pidfd_open (Linux 5.3+)")
    victim.kill()
    victim.wait()
    guardian.wait(timeout=30)
    record = read_run_json(run_dir)
    assert record["status"] == expected
    if expected == "failed":
        assert "ended abruptly" in record["error"]


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


@pytest.mark.parametrize(("first", "named"), [(1, "rank 1 ended abruptly in round 7"), (0, "rank 0 ended")])
def test_guardian_names_the_rank_that_ended_first_and_the_round_under_way(tmp_path, first, named):
    run_dir = _run(tmp_path, "running")
    ranks = {0: _sleeper(), 1: _sleeper(), 2: _sleeper()}
    guardian = start_guardian(run_dir, ranks[0].pid, {rank: process.pid for rank, process in ranks.items()})
    if guardian is None:
        pytest.skip("needs os.pidfd_open (Linux 5.3+)")
    for step in (1, 2, 7):
        guardian.tell_step(step)  # the first waits until the guardian watches every rank
    assert guardian.wait_until_watching()
    time.sleep(0.5)  # the guardian reads what it was told before anything ends
    ranks[first].kill()
    ranks[first].wait()
    time.sleep(1)  # then, as MPI's launcher does, the others are killed
    for process in ranks.values():
        process.kill()
        process.wait()
    guardian.wait(timeout=30)
    record = read_run_json(run_dir)
    assert record["status"] == "failed"
    assert record["error"].startswith(named), record["error"]
    assert record["failed_round"] == 7


def test_guardian_ignores_what_is_not_a_fact(tmp_path):
    run_dir = _run(tmp_path, "running")
    victim = _sleeper()
    guardian = start_guardian(run_dir, victim.pid)
    if guardian is None:
        pytest.skip("needs os.pidfd_open (Linux 5.3+)")
    garbage_lines = (b"not json\n", b"[1, 2]\n", b'{"ranks": {"x": "y"}}\n', b'{"step": "7x"}\n', b"\xff\n")
    for garbage in garbage_lines:
        os.write(guardian.process.stdin.fileno(), garbage)
    guardian.tell_step(3)
    time.sleep(1)
    victim.kill()
    victim.wait()
    guardian.wait(timeout=30)
    record = read_run_json(run_dir)
    assert record["status"] == "failed" and record["failed_round"] == 3
