"""Training jobs of the accuracy-against-bytes benchmarks: partition, launch, read, compare.

Each scenario is a real ``mpiexec -n N python -m fedgossip train`` job, read
back from its ``summary.json``. Every row is compared with the first row of its
group (the uncompressed reference measured in the same benchmark run): points of
average-model accuracy lost and how many times fewer bytes were sent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedgossip.data.create import PartitionRequest, create_partition
from fedgossip.errors import ConfigError, FedGossipError

__all__ = [
    "Scenario",
    "find_mpiexec",
    "digits_partition",
    "run_scenario",
    "compare_with_reference",
    "first_reaching",
    "evaluation_curve",
]


@dataclass(frozen=True)
class Scenario:
    """One training job of a benchmark, with the targets it is held to against the reference."""

    name: str
    algorithm: str
    compressor: str
    max_accuracy_drop: float | None = None  # points of accuracy it may lose against the reference
    min_byte_ratio: float | None = None  # at least this many times fewer bytes than the reference
    options: tuple[str, ...] = ()  # further `fedgossip train` options, such as ("--optimizer", "sgd")

    @property
    def run_name(self) -> str:
        """Return the run directory name: ``COMP-AMS top-1%`` runs in ``comp-ams-top-1pct``."""
        return self.name.replace(" ", "-").replace("%", "pct").lower()


def find_mpiexec() -> str:
    """Return the mpiexec beside this Python (the mpich extra) or on PATH."""
    found = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
    if not found:
        raise ConfigError("mpiexec not found: install the mpich extra (pip install fedgossip[mpich])")
    return found


def digits_partition(work: Path, ranks: int, alpha: float, seed: int) -> Path:
    """Return a Dirichlet(α) partition of digits into ``ranks`` shards in ``work``, made once."""
    data = work / f"digits-{ranks}-alpha{alpha}-seed{seed}"
    if not (data / "partition.json").exists():
        request = PartitionRequest("digits", f"dirichlet:alpha={alpha}", ranks, seed)
        create_partition(request, data)
    return data


def run_scenario(
    scenario: Scenario,
    data: Path,
    runs: Path,
    ranks: int,
    rounds: int,
    seed: int,
    options: tuple[str, ...] = (),
    nodes: int | None = None,
) -> dict[str, Any]:
    """Train ``scenario`` under ``mpiexec -n ranks`` into ``runs``; return its row of figures.

    ``options`` go to every scenario of the benchmark (``--topology ring``),
    before the scenario's own options. With ``nodes`` the ranks host that many
    nodes (``--nodes``), and one rank is a plain process, without mpiexec.
    """
    launcher = [] if nodes is not None and ranks == 1 else [find_mpiexec(), "-n", str(ranks)]
    hosting = () if nodes is None else ("--nodes", str(nodes))
    command = [
        *launcher, sys.executable, "-m", "fedgossip", "train", *hosting,
        "--data", str(data), "--algorithm", scenario.algorithm, "--compressor", scenario.compressor,
        *options, *scenario.options, "--rounds", str(rounds), "--seed", str(seed),
        "--out", str(runs), "--name", scenario.run_name,
    ]  # fmt: skip
    run_dir = runs / scenario.run_name
    if run_dir.exists():
        shutil.rmtree(run_dir)  # a rerun replaces the scenario's previous run
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise FedGossipError(f"scenario {scenario.name!r} failed: " + " | ".join(tail))
    summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "scenario": scenario.name,
        "algorithm": scenario.algorithm,
        "compressor": summary["compressor"],
        "avg_model_accuracy": summary["final"]["avg_model_accuracy"],
        "mean_node_accuracy": summary["final"]["test_accuracy"]["mean"],
        "bytes_sent_total": summary["communication"]["bytes_sent_total"],
        "bytes_sent_per_rank": summary["communication"]["bytes_sent_per_rank_mean"],
        "data_bytes_sent_total": summary["communication"].get("data_bytes_sent_total") or 0,
        "samples_processed": summary["communication"].get("samples_processed_total"),
        "compression_ratio": summary["communication"]["compression_ratio"],
        "wall_s": summary["time"]["wall_s"],
        "run": str(run_dir),
    }


def evaluation_curve(run: str | Path, *per_rank: str) -> dict[str, list[float]]:
    """Return a run's wall time and average-model accuracy at each evaluation, plus ``per_rank`` metrics
    summed over ranks (e.g. ``samples_processed``), as plain lists for a benchmark's JSON."""
    from fedgossip.records.metrics import read_metrics

    metrics = read_metrics(Path(run))
    curve = {
        "wall_s": [float(w) for w in metrics["wall_time"]],
        "avg_model_accuracy": [float(a) for a in metrics["avg_model_accuracy"]],
    }
    curve.update({name: [float(np.nansum(row)) for row in metrics[name]] for name in per_rank})
    return curve


def first_reaching(accuracy, target: float) -> int | None:
    """Return the index of the first evaluation whose accuracy reached ``target``, or None."""
    reached = np.flatnonzero(np.asarray(accuracy) >= target)
    return int(reached[0]) if reached.size else None


def compare_with_reference(rows: list[dict[str, Any]], scenarios: tuple[Scenario, ...]) -> None:
    """Add to each row its accuracy drop, byte ratio and targets against ``rows[0]``, in place."""
    reference = rows[0]
    for row, scenario in zip(rows, scenarios, strict=True):
        row["accuracy_drop_points"] = 100 * (reference["avg_model_accuracy"] - row["avg_model_accuracy"])
        row["bytes_ratio_to_fp32"] = reference["bytes_sent_total"] / row["bytes_sent_total"]
        row["targets"] = _targets(scenario, row)


def _targets(scenario: Scenario, row: dict[str, Any]) -> dict[str, bool]:
    targets = {}
    if scenario.max_accuracy_drop is not None:
        targets[f"accuracy within {scenario.max_accuracy_drop} points"] = (
            row["accuracy_drop_points"] <= scenario.max_accuracy_drop
        )
    if scenario.min_byte_ratio is not None:
        met = row["bytes_ratio_to_fp32"] >= scenario.min_byte_ratio
        targets[f"≥ {scenario.min_byte_ratio}× fewer bytes"] = met
    return targets
