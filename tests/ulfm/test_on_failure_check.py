"""`--on-failure continue` under Open MPI: refused without --with-ft ulfm; with it, refused only for
what cannot survive a lost rank (gt), and `fedgossip train` goes on past a killed rank."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.timeout(120)
def test_continue_needs_the_fault_tolerance_switch(ulfm, tmp_path):
    out = tmp_path / "runs"
    train = ["-m", "fedgossip", "train", "--on-failure", "continue", "--rounds", "1", "--out", str(out)]
    without = ulfm(1, train, timeout=50, fault_tolerance=False)
    assert "this Open MPI job was launched without fault tolerance (mpirun --with-ft ulfm)" in without.stderr
    with_switch = ulfm(1, [*train, "--algorithm", "gt", "--nodes", "3"], timeout=50)
    expected = "--on-failure continue is not supported by gt yet"
    assert expected in with_switch.stderr, with_switch.stderr
    assert without.returncode != 0 and with_switch.returncode != 0
    assert not out.exists() and not (tmp_path / "datasets").exists()  # nothing written, no data made


def train_3_ranks(ulfm, out: Path, kills: str):
    """Run `fedgossip train --on-failure continue` on 3 ranks while the ranks in ``kills`` die."""
    script = str(Path(__file__).parent / "scripts" / "train_and_kill.py")
    args = ["--on-failure", "continue", "--rounds", "4", "--local-steps", "2", "--out", str(out)]
    return ulfm(3, [script, json.dumps(args), kills], timeout=100)


@pytest.mark.timeout(120)
def test_the_command_goes_on_past_a_killed_rank_and_says_so(ulfm, tmp_path):
    out = tmp_path / "runs"
    done = train_3_ranks(ulfm, out, "2@2")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "lost devices" in done.stdout and "rank 2 (node 2) in round 2" in done.stdout, done.stdout
    (run_dir,) = out.iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed"
    assert [(entry["node"], entry["rank"]) for entry in record["lost"]] == [(2, 2)]


@pytest.mark.timeout(120)
def test_losing_rank_0_ends_the_run_with_one_message(ulfm, tmp_path):
    done = train_3_ranks(ulfm, tmp_path / "runs", "0@2")
    assert done.returncode != 0 and "timed out" not in done.stderr, done.stderr[-2000:]
    assert "rank 0 was lost in round 2: it writes the run's records" in done.stderr, done.stderr[-2000:]
