"""The guardian marks a run failed when its process vanishes while the run says running."""

import subprocess
import sys

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
