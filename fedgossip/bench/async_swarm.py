"""Time to accuracy with stragglers: asynchronous swarm beside synchronous swarm and allreduce.

Every scenario is a real ``mpiexec -n N fedgossip train`` job on one Dirichlet
partition of digits, with the same ranks slowed down (``--slowdown``), the
same compressor, the same local steps per round and the same rounds (for
async: interactions each rank initiates). The reference is the synchronous
swarm run: each row says when its average model first reached the accuracy
the synchronous run ended with, and how that time compares with the
synchronous run's wall time. Asynchronous gossip should get there in at most
0.6 of it: nobody waits for the slowed ranks, and with the same rounds (each
rank initiates as many interactions as it has synchronous rounds, and serves
others' too) it also averages about twice as often, which shows in its bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fedgossip.bench.jobs import Scenario, digits_partition, evaluation_curve, first_reaching, run_scenario

__all__ = ["ASYNC_SCENARIOS", "MAX_TIME_RATIO", "bench_async", "time_to_accuracy"]

MAX_TIME_RATIO = 0.6  # async must reach sync's final accuracy within this share of sync's wall time

ASYNC_SCENARIOS = (
    Scenario("sync swarm", "swarm", "none"),
    Scenario("async swarm", "swarm", "none", options=("--async",)),
    Scenario("allreduce", "allreduce", "none"),
)


def time_to_accuracy(wall: np.ndarray, accuracy: np.ndarray, target: float) -> float | None:
    """Return the first evaluation's wall time at which ``accuracy`` reached ``target``, or None."""
    at = first_reaching(accuracy, target)
    return None if at is None else float(np.asarray(wall)[at])


def bench_async(
    work: Path,
    ranks: int = 16,
    rounds: int = 60,
    local_steps: int = 10,
    slowdown: str = "ranks=0,1:factor=5",
    alpha: float = 0.1,
    seed: int = 0,
    scenarios: tuple[Scenario, ...] = ASYNC_SCENARIOS,
    on_scenario: Callable[[Scenario], None] | None = None,
) -> dict[str, Any]:
    """Run every scenario in ``work``; return the table as plain data, the reference first."""
    data = digits_partition(work, ranks, alpha, seed)
    shared = ("--local-steps", str(local_steps), "--slowdown", slowdown, "--eval-every", "2")
    rows = []
    for scenario in scenarios:
        if on_scenario is not None:
            on_scenario(scenario)
        row = run_scenario(scenario, data, work / "runs", ranks, rounds, seed, shared)
        row["curve"] = evaluation_curve(row["run"])
        rows.append(row)
    reference = rows[0]
    target = reference["avg_model_accuracy"]
    for row in rows:
        reached = time_to_accuracy(row["curve"]["wall_s"], row["curve"]["avg_model_accuracy"], target)
        row["time_to_reference_accuracy_s"] = reached
        row["time_ratio_to_reference"] = None if reached is None else reached / reference["wall_s"]
    for row, scenario in zip(rows, scenarios, strict=True):
        row["targets"] = {}
        if "--async" in scenario.options:
            ratio = row["time_ratio_to_reference"]
            row["targets"][f"≤ {MAX_TIME_RATIO}× sync's wall time"] = (
                ratio is not None and ratio <= MAX_TIME_RATIO
            )
    return {
        "benchmark": "async",
        "data": f"digits, dirichlet:alpha={alpha}, {ranks} nodes",
        "ranks": ranks,
        "rounds": rounds,
        "local_steps": local_steps,
        "slowdown": slowdown,
        "seed": seed,
        "reference": scenarios[0].name,
        "target_accuracy": target,
        "rows": rows,
    }
