"""How far many nodes per rank carry: the same devices on many processes or on few, side by side.

Two parts, each a set of real ``fedgossip train`` jobs measured from outside:

- **placement**: the default digits job with ``--nodes N`` (64) on N ranks, on N/8 ranks
  and in one process — wall time of the whole job (start-up included), training time
  (the run's own clock) and total peak memory (every rank's ``ru_maxrss``, summed).
  Goals: one process at least 5× faster in wall time and 10× lighter than N ranks.
- **devices**: synthetic(1, 1) with one device per node (natural partition), logreg
  and mlp, at each device count on 1 and 2 ranks: seconds per round and
  process-seconds per device-step, against the same job with one node per process
  (as many nodes as ranks) — the goal: at most 1/10 of its cost per device-step.

Per device-step cost is process time: wall × ranks ÷ (rounds × local steps × nodes),
so runs on different numbers of ranks compare on the machine time they take.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedgossip.bench.jobs import find_mpiexec
from fedgossip.data.create import PartitionRequest, create_partition
from fedgossip.errors import FedGossipError

__all__ = ["MIN_SPEEDUP", "MIN_MEMORY_RATIO", "MAX_STEP_COST_RATIO", "bench_scale", "run_job"]

MIN_SPEEDUP = 5.0  # one process vs one rank per node, wall time of the default job
MIN_MEMORY_RATIO = 10.0  # ... and total peak memory
MAX_STEP_COST_RATIO = 0.1  # per device-step, co-hosted vs one node per process


def run_job(ranks: int, options: tuple[str, ...], runs: Path, name: str) -> dict[str, Any]:
    """Run ``fedgossip train`` on ``ranks`` ranks (1: a plain process, no mpiexec); return its figures."""
    launcher = [] if ranks == 1 else [find_mpiexec(), "-n", str(ranks)]
    command = [
        *launcher,
        sys.executable,
        "-m",
        "fedgossip",
        "train",
        *options,
        "--out",
        str(runs),
        "--name",
        name,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise FedGossipError(f"scale job {name!r} failed: " + " | ".join(tail))
    run_dir = runs / name
    record = json.loads((run_dir / "run.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "job": name,
        "ranks": ranks,
        "nodes": record["nodes"],
        "wall_s": wall,
        "training_s": summary["time"]["wall_s"],
        "peak_rss_mb_total": float(sum(record["peak_rss_mb"])),
        "peak_rss_mb_max": float(max(record["peak_rss_mb"])),
        "avg_model_accuracy": summary["final"]["avg_model_accuracy"],
        "bytes_within_share": summary["communication"].get("bytes_within_share"),
        "run": str(run_dir),
    }


def bench_placement(work: Path, nodes: int, rounds: int, on_job: Callable[[str], None] | None) -> dict:
    """The default digits job of ``nodes`` nodes on ``nodes``, ``nodes // 8`` and 1 ranks."""
    rows = []
    for ranks in sorted({nodes, max(1, nodes // 8), 1}, reverse=True):
        name = f"default-{nodes}-on-{ranks}"
        if on_job is not None:
            on_job(name)
        rows.append(run_job(ranks, ("--nodes", str(nodes), "--rounds", str(rounds)), work / "runs", name))
    spread, single = rows[0], rows[-1]
    for row in rows:
        row["speedup"] = spread["wall_s"] / row["wall_s"]
        row["memory_ratio"] = spread["peak_rss_mb_total"] / row["peak_rss_mb_total"]
    single["targets"] = {
        f"≥ {MIN_SPEEDUP}× faster than {nodes} ranks": single["speedup"] >= MIN_SPEEDUP,
        f"≥ {MIN_MEMORY_RATIO}× less memory than {nodes} ranks": single["memory_ratio"] >= MIN_MEMORY_RATIO,
    }
    return {"nodes": nodes, "rounds": rounds, "rows": rows}


def synthetic_partition(work: Path, devices: int, max_samples: int, test_fraction: float) -> Path:
    """Return synthetic(1, 1) with ``devices`` devices, one per node (natural), made once in ``work``."""
    data = work / f"synthetic-{devices}-cap{max_samples}"
    if not (data / "partition.json").exists():
        source = f"synthetic:alpha=1,beta=1,devices={devices},max_samples={max_samples}"
        create_partition(PartitionRequest(source, "natural", devices, 0, test_fraction=test_fraction), data)
    return data


def bench_devices(
    work: Path,
    devices: tuple[int, ...],
    models: tuple[str, ...],
    ranks: tuple[int, ...],
    rounds: int,
    local_steps: int,
    max_samples: int,
    test_fraction: float,
    on_job: Callable[[str], None] | None,
) -> dict:
    """Many synthetic devices on few ranks, each model against one node per process."""
    shared = ("--rounds", str(rounds), "--local-steps", str(local_steps), "--eval-every", str(rounds))
    rows = []
    alone = max(ranks)  # the reference: as many nodes as ranks, one per process
    reference_data = synthetic_partition(work, alone, max_samples, test_fraction)
    for model in models:
        name = f"{model}-{alone}-nodes-on-{alone}"
        if on_job is not None:
            on_job(name)
        reference = run_job(
            alone, ("--data", str(reference_data), "--model", model, *shared), work / "runs", name
        )
        rows.append(_per_step(reference, rounds, local_steps, model, None))
        for count in devices:
            data = synthetic_partition(work, count, max_samples, test_fraction)
            for on in ranks:
                name = f"{model}-{count}-nodes-on-{on}"
                if on_job is not None:
                    on_job(name)
                row = run_job(on, ("--data", str(data), "--model", model, *shared), work / "runs", name)
                rows.append(_per_step(row, rounds, local_steps, model, reference))
    return {"rounds": rounds, "local_steps": local_steps, "max_samples": max_samples, "rows": rows}


def _per_step(row: dict, rounds: int, local_steps: int, model: str, reference: dict | None) -> dict:
    row["model"] = model
    row["seconds_per_round"] = row["training_s"] / rounds
    row["process_s_per_device_step"] = (
        row["training_s"] * row["ranks"] / (rounds * local_steps * row["nodes"])
    )
    row["targets"] = {}
    if reference is not None:
        ratio = row["process_s_per_device_step"] / reference["process_s_per_device_step"]
        row["step_cost_ratio"] = ratio
        if row["nodes"] >= 1000:
            row["targets"][f"≤ {MAX_STEP_COST_RATIO} of one node per process, per device-step"] = (
                ratio <= MAX_STEP_COST_RATIO
            )
    return row


def bench_scale(
    work: Path,
    nodes: int = 64,
    rounds: int = 60,
    devices: tuple[int, ...] = (1000, 10000),
    models: tuple[str, ...] = ("logreg", "mlp"),
    ranks: tuple[int, ...] = (1, 2),
    device_rounds: int = 10,
    local_steps: int = 5,
    max_samples: int = 500,
    test_fraction: float = 0.02,
    on_job: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run both parts in ``work``; return them as plain data (results/bench/scale.json)."""
    return {
        "benchmark": "scale",
        "placement": bench_placement(work, nodes, rounds, on_job),
        "devices": bench_devices(
            work, devices, models, ranks, device_rounds, local_steps, max_samples, test_fraction, on_job
        ),
    }
