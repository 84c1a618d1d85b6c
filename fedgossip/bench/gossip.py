"""Accuracy against bytes: compressed gossip beside float32 gossip, same data, graph and rounds.

Each scenario is a real ``mpiexec -n N fedgossip train`` job on one Dirichlet
partition of digits over a ring; the reference is the float32 D-PSGD run of
the same benchmark, so the figures that matter are the accuracy difference
and the byte ratio against it, not the seconds of this machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedgossip.data.create import PartitionRequest, create_partition
from fedgossip.errors import ConfigError, FedGossipError

__all__ = ["Scenario", "SCENARIOS", "bench_gossip", "find_mpiexec"]


@dataclass(frozen=True)
class Scenario:
    """One training job of the benchmark, with the targets it is held to against fp32."""

    name: str
    algorithm: str
    compressor: str
    max_accuracy_drop: float | None = None  # points of accuracy it may lose against fp32
    min_byte_ratio: float | None = None  # at least this many times fewer bytes than fp32


SCENARIOS = (
    Scenario("fp32 dpsgd", "dpsgd", "none"),
    Scenario("CHOCO 8-bit", "dpsgd", "uniform:bits=8", max_accuracy_drop=0.5, min_byte_ratio=3.9),
    Scenario("CHOCO 4-bit", "dpsgd", "uniform:bits=4", max_accuracy_drop=1.0, min_byte_ratio=7.0),
    Scenario("swarm 4-bit", "swarm", "uniform:bits=4"),
    Scenario("CHOCO top-1%", "dpsgd", "topk:ratio=0.01"),
)


def find_mpiexec() -> str:
    """Return the mpiexec beside this Python (the mpich extra) or on PATH."""
    found = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
    if not found:
        raise ConfigError("mpiexec not found: install the mpich extra (pip install fedgossip[mpich])")
    return found


def bench_gossip(
    work: Path,
    ranks: int = 16,
    rounds: int = 60,
    alpha: float = 0.1,
    seed: int = 0,
    scenarios: tuple[Scenario, ...] = SCENARIOS,
    on_scenario: Callable[[Scenario], None] | None = None,
) -> dict[str, Any]:
    """Run every scenario under ``mpiexec -n ranks`` in ``work``; return the table as plain data."""
    data = work / f"digits-{ranks}-alpha{alpha}"
    if not (data / "partition.json").exists():
        request = PartitionRequest("digits", f"dirichlet:alpha={alpha}", ranks, seed)
        create_partition(request, data)
    rows = []
    for scenario in scenarios:
        if on_scenario is not None:
            on_scenario(scenario)
        rows.append(_run(scenario, work, data, ranks, rounds, seed))
    reference = rows[0]
    for row, scenario in zip(rows, scenarios, strict=True):
        row["accuracy_drop_points"] = 100 * (reference["avg_model_accuracy"] - row["avg_model_accuracy"])
        row["bytes_ratio_to_fp32"] = reference["bytes_sent_total"] / row["bytes_sent_total"]
        row["targets"] = _targets(scenario, row)
    return {
        "benchmark": "gossip",
        "data": f"digits, dirichlet:alpha={alpha}, {ranks} nodes",
        "topology": "ring",
        "ranks": ranks,
        "rounds": rounds,
        "seed": seed,
        "reference": scenarios[0].name,
        "rows": rows,
    }


def _run(scenario: Scenario, work: Path, data: Path, ranks: int, rounds: int, seed: int) -> dict[str, Any]:
    name = scenario.name.replace(" ", "-").replace("%", "pct").lower()
    command = [
        find_mpiexec(), "-n", str(ranks), sys.executable, "-m", "fedgossip", "train",
        "--data", str(data), "--algorithm", scenario.algorithm, "--compressor", scenario.compressor,
        "--topology", "ring", "--rounds", str(rounds), "--seed", str(seed),
        "--out", str(work / "runs"), "--name", name,
    ]  # fmt: skip
    run_dir = work / "runs" / name
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
        "compression_ratio": summary["communication"]["compression_ratio"],
        "wall_s": summary["time"]["wall_s"],
        "run": str(run_dir),
    }


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
