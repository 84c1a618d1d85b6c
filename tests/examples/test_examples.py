"""The scripts in examples/ run as a user runs them, and what they wrote is checked from the files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from fedgossip.bench.jobs import find_mpiexec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(*argv, timeout: float = 300) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(map(str, argv))} hung for {timeout} s:\n{exc.stdout}\n{exc.stderr}")
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _example(name: str, *args) -> str:
    return _run(sys.executable, str(EXAMPLES / name), *map(str, args))


def _metrics(run_dir: Path) -> dict[str, np.ndarray]:
    with h5py.File(run_dir / "metrics.h5", "r") as handle:
        # datasets only: the per-edge traffic lives in a group of its own (edges/)
        return {name: item[()] for name, item in handle.items() if isinstance(item, h5py.Dataset)}


def test_the_compressor_sweep_and_the_table_of_its_runs(tmp_path):
    _example("sweep_compressors.py", tmp_path, "--rounds", "2")
    results = tmp_path / "results"
    sent = {}
    for name in ("none", "fp16", "qsgd-bits4", "topk-ratio0.1"):
        record = json.loads((results / name / "run.json").read_text())
        assert record["status"] == "completed" and record["nodes"] == 4
        sent[name] = _metrics(results / name)["bytes_sent"][-1].sum()
    # half precision halves the payload; 4-bit codes and a 10 % top-k send a fraction of it
    assert 0.45 < sent["fp16"] / sent["none"] < 0.55
    assert sent["qsgd-bits4"] < sent["none"] / 5 and sent["topk-ratio0.1"] < sent["none"] / 4

    printed = _example("runs_table.py", results)
    assert f"wrote {results / 'runs.csv'}" in printed
    with open(results / "runs.csv", newline="") as handle:
        rows = {row["name"]: row for row in csv.DictReader(handle)}
    assert sorted(rows) == sorted(sent)
    for name, row in rows.items():
        metrics = _metrics(results / name)
        assert float(row["mb_sent"]) == pytest.approx(sent[name] / 1e6)
        assert float(row["avg_model_accuracy"]) == pytest.approx(metrics["avg_model_accuracy"][-1])
        assert int(row["rounds"]) == 2 and row["algorithm"] == "dpsgd"


def test_the_custom_model_is_the_one_trained(tmp_path):
    _example("custom_model.py", tmp_path, "--rounds", "2")
    run_dir = tmp_path / "results" / "small-conv"
    assert json.loads((run_dir / "run.json").read_text())["config"]["model"] == "small-conv"
    metrics = _metrics(run_dir)
    # conv 1→8 (3x3 + bias) and linear 8·8·8→10: its float32 vector, to 2 ring neighbours a round, 2 rounds
    payload = 4 * ((8 * 9 + 8) + (8 * 64 * 10 + 10))
    assert np.all((4 * payload <= metrics["bytes_sent"][-1]) & (metrics["bytes_sent"][-1] < 4.4 * payload))
    assert metrics["test_accuracy"].shape == (2, 4)
    assert metrics["test_accuracy"][-1].mean() > 0.3  # 10 classes: chance is 0.1


def test_fg_train_under_mpiexec_spreads_the_nodes_over_the_ranks(tmp_path):
    printed = _run(
        find_mpiexec(), "-n", "2", sys.executable, str(EXAMPLES / "mpi_train.py"), tmp_path, "--rounds", "2"
    )
    (run_dir,) = (tmp_path / "results").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed" and record["world_size"] == 2 and record["nodes"] == 4
    assert f"{run_dir}: completed on 2 ranks" in printed  # rank 0 alone prints, and once
    assert printed.count("completed on") == 1
    assert _metrics(run_dir)["test_accuracy"].shape == (2, 4)
