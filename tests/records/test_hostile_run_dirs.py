"""Run directories whose files became FIFOs, links to /dev/zero or nested JSON: one clear error, no hang.

The readers run as a user runs them (``python -m fedgossip summary``) in a
subprocess with a timeout and a memory limit, so a reader that hangs on a FIFO
or fills memory from /dev/zero fails the test instead of stopping the suite or
the machine.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fedgossip.records import MetricsWriter, create_run_dir, summarize, update_run_status, write_run_json
from fedgossip.records.checkpoint import commit_checkpoint, write_rank_checkpoint
from fedgossip.records.jsonfile import JSON_LIMIT

TIMEOUT_S = 60
MEMORY_LIMIT = 3 << 30  # address space of the reader: /dev/zero read whole hits it in a moment


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _python(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,  # a hang is a TimeoutExpired: the test fails, the suite goes on
        preexec_fn=_limit_memory,
        env={**os.environ, "COLUMNS": "80"},
    )


def fedgossip(*args: object) -> subprocess.CompletedProcess:
    return _python("-m", "fedgossip", *(str(a) for a in args))


def make_run(out: Path, name: str) -> Path:
    """Write a finished 2-rank run with two evaluations and its summary.json; return its directory."""
    run_dir = create_run_dir(out, name)
    write_run_json(
        run_dir, {"name": name, "status": "running", "config": {"algorithm": "swarm"}, "world_size": 2}
    )
    writer = MetricsWriter(run_dir, 2)
    for i in (1, 2):
        per_rank = {"test_accuracy": np.array([0.3, 0.4]) * i}
        writer.append(10 * i, 1.0 * i, per_rank, {"avg_model_accuracy": 0.3 * i})
    update_run_status(run_dir, "completed")
    (run_dir / "summary.json").write_text(json.dumps(summarize(run_dir)))
    return run_dir


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _nested_objects(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def _replace(name: str, make: Callable[[Path], None]) -> Callable[[Path], None]:
    def damage(run_dir: Path) -> None:
        (run_dir / name).unlink()
        make(run_dir / name)

    return damage


def _write(name: str, text: str) -> Callable[[Path], None]:
    return lambda run_dir: (run_dir / name).write_text(text)


def _sparse(name: str, size: int) -> Callable[[Path], None]:
    def damage(run_dir: Path) -> None:
        with open(run_dir / name, "wb") as stream:
            stream.truncate(size)

    return damage


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _to_dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


# damage -> substring of the one error line `fedgossip summary` prints for it
SUMMARY_ERRORS = {
    "run-json-nested-10^4-deep": (_write("run.json", _nested(10**4)), "run.json is not readable JSON"),
    "run-json-objects-nested-10^4-deep": (
        _write("run.json", _nested_objects(10**4)),
        "run.json is not readable JSON",
    ),
    "run-json-a-fifo": (_replace("run.json", _fifo), "run.json is not a regular file (it is a FIFO)"),
    "run-json-linked-to-dev-zero": (
        _replace("run.json", _to_dev_zero),
        "run.json is not a regular file (it is a character device)",
    ),
    "run-json-sparse-beyond-the-cap": (_sparse("run.json", JSON_LIMIT + 1), "run.json holds 64.0 MiB"),
    "metrics-h5-a-fifo": (_replace("metrics.h5", _fifo), "metrics.h5 is not a regular file (it is a FIFO)"),
    "metrics-h5-linked-to-dev-zero": (
        _replace("metrics.h5", _to_dev_zero),
        "metrics.h5 is not a regular file (it is a character device)",
    ),
}


@pytest.mark.parametrize("case", SUMMARY_ERRORS)
def test_summary_of_a_damaged_run_is_one_error_line(tmp_path, case):
    damage, message = SUMMARY_ERRORS[case]
    run_dir = make_run(tmp_path, "r")
    (run_dir / "summary.json").unlink()  # the files themselves are read, not a summary of them
    damage(run_dir)
    result = fedgossip("summary", run_dir)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr and str(run_dir) in result.stderr


# A summary.json that cannot be read is computed again from run.json and metrics.h5.
SUMMARY_JSON_DAMAGES = {
    "a-fifo": _replace("summary.json", _fifo),
    "linked-to-dev-zero": _replace("summary.json", _to_dev_zero),
    "nested-10^4-deep": _write("summary.json", _nested_objects(10**4)),
}


@pytest.mark.parametrize("case", SUMMARY_JSON_DAMAGES)
def test_an_unreadable_summary_json_is_computed_again(tmp_path, case):
    run_dir = make_run(tmp_path, "r")
    SUMMARY_JSON_DAMAGES[case](run_dir)
    result = fedgossip("summary", run_dir, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["final"]["avg_model_accuracy"] == pytest.approx(0.6)


def _summary_with(**communication: object) -> Callable[[Path], None]:
    """Return a damage giving summary.json every key, but ``communication`` figures of the wrong type."""

    def damage(run_dir: Path) -> None:
        saved = json.loads((run_dir / "summary.json").read_text())
        saved["communication"].update(communication)
        (run_dir / "summary.json").write_text(json.dumps(saved))

    return damage


def test_runs_lists_damaged_runs_as_damaged_and_goes_on(tmp_path):
    make_run(tmp_path, "a-good")
    damages = {
        "b-nested": _write("run.json", _nested(10**4)),
        "c-fifo": _replace("run.json", _fifo),
        "d-dev-zero": _replace("run.json", _to_dev_zero),
        "e-dangling-link": _replace("run.json", lambda path: path.symlink_to(tmp_path / "gone")),
        "f-summary-of-the-wrong-form": _summary_with(bytes_sent_total="lots"),
    }
    for name, damage in damages.items():
        damage(make_run(tmp_path, name))
    make_run(tmp_path, "g-good")
    result = fedgossip("runs", tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert sorted(rows) == ["a-good", *damages, "g-good"]
    assert [rows[name]["avg_model_accuracy"] for name in ("a-good", "g-good")] == [0.6, 0.6]
    for name in damages:
        assert rows[name]["status"] is None and rows[name]["note"], name
    listed = fedgossip("runs", tmp_path)
    assert listed.returncode == 0 and listed.stdout.count("unreadable") == len(damages), listed.stdout


def test_compare_names_the_damaged_run(tmp_path):
    good, bad = make_run(tmp_path, "good"), make_run(tmp_path, "bad")
    _replace("run.json", _fifo)(bad)
    result = fedgossip("compare", good, bad)
    assert result.returncode == 1 and "is not a regular file (it is a FIFO)" in result.stderr
    assert str(bad / "run.json") in result.stderr and len(result.stderr.strip().splitlines()) == 1


# --- checkpoints: what --resume reads --------------------------------------------------------------


def _resume_read(run_dir: Path) -> subprocess.CompletedProcess:
    """Read the last checkpoint of ``run_dir`` and rank 0's file, as a resume does; print the error."""
    script = f"""
        from fedgossip.errors import FedGossipError
        from fedgossip.records.checkpoint import latest_checkpoint, read_rank_checkpoint
        try:
            read_rank_checkpoint({str(run_dir)!r}, latest_checkpoint({str(run_dir)!r}), 0)
        except FedGossipError as exc:
            print(exc)
        """
    return _python("-c", textwrap.dedent(script))


@pytest.fixture
def checkpointed(tmp_path) -> Path:
    run_dir = make_run(tmp_path, "r")
    hashes = [write_rank_checkpoint(run_dir, 3, rank, {"model": np.ones(4) * rank}) for rank in (0, 1)]
    commit_checkpoint(run_dir, 3, 2, 1.0, hashes, world_size=2)
    return run_dir


RANK_FILE = "checkpoints/round-000003/rank-00000.pt"
CHECKPOINT_DAMAGES = {
    "rank-file-linked-to-dev-zero": (_replace(RANK_FILE, _to_dev_zero), "is not a regular file"),
    "rank-file-a-fifo": (_replace(RANK_FILE, _fifo), "is not a regular file (it is a FIFO)"),
    "latest-json-linked-to-dev-zero": (
        _replace("checkpoints/latest.json", _to_dev_zero),
        "latest.json is not a regular file",
    ),
    "latest-json-a-fifo": (_replace("checkpoints/latest.json", _fifo), "latest.json is not a regular file"),
    "latest-json-nested-10^4-deep": (
        _write("checkpoints/latest.json", _nested(10**4)),
        "latest.json is not readable JSON",
    ),
}


@pytest.mark.parametrize("case", CHECKPOINT_DAMAGES)
def test_a_damaged_checkpoint_is_one_clear_error(checkpointed, case):
    damage, message = CHECKPOINT_DAMAGES[case]
    damage(checkpointed)
    result = _resume_read(checkpointed)
    assert result.returncode == 0, result.stderr  # no MemoryError, no RecursionError
    assert message in result.stdout and "start a new run" in result.stdout


# --- a summary.json older than the metrics it summarizes -----------------------------------------------


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


def _cut_in_half(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _summary_of(command: str, good: Path, run_dir: Path) -> subprocess.CompletedProcess:
    return fedgossip(command, *([good] if command == "compare" else []), run_dir, "--json")


@pytest.mark.parametrize("damage", [_cut_in_half, _garbage])
@pytest.mark.parametrize("command", ["summary", "compare"])
def test_a_saved_summary_is_not_trusted_once_metrics_h5_is_damaged(tmp_path, damage, command):
    good, run_dir = make_run(tmp_path, "good"), make_run(tmp_path, "damaged")
    damage(run_dir / "metrics.h5")
    result = _summary_of(command, good, run_dir)
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert f"cannot read {run_dir / 'metrics.h5'}" in result.stderr


@pytest.mark.parametrize("command", ["summary", "compare"])
def test_a_saved_summary_is_not_trusted_once_metrics_h5_is_gone(tmp_path, command):
    good, run_dir = make_run(tmp_path, "good"), make_run(tmp_path, "emptied")
    (run_dir / "metrics.h5").unlink()
    result = _summary_of(command, good, run_dir)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert (figures[-1] if command == "compare" else figures)["final"]["avg_model_accuracy"] is None
