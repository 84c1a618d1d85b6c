"""Importance filtering: samples processed and wall time to the baseline's accuracy, with and without.

Every scenario is a real ``mpiexec -n N fedgossip train`` job on the same
Dirichlet partition of digits, with rounds of one local epoch, so a node that
hides a fraction of its samples takes proportionally fewer steps (at a larger
learning rate). The reference runs without a filter: each row says how many
samples (summed over nodes) and how many seconds of wall time it took to first
reach the accuracy the reference ended with. Samples count training passes
(forward and backward); the filter's re-scoring forward passes over hidden
samples are reported apart (``samples_rescored``), and the wall time includes them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fedgossip.bench.jobs import Scenario, digits_partition, evaluation_curve, first_reaching, run_scenario
from fedgossip.records.metrics import read_metrics

__all__ = ["FILTER_SCENARIOS", "bench_filter"]

FILTER_SCENARIOS = (
    Scenario("no filter", "dpsgd", "none"),
    Scenario("hide 30%", "dpsgd", "none", options=("--filter", "hide:fraction=0.3")),
    Scenario("hide 50%, decay 0.95", "dpsgd", "none", options=("--filter", "hide:fraction=0.5,decay=0.95")),
)


def bench_filter(
    work: Path,
    ranks: int = 16,
    rounds: int = 60,
    alpha: float = 0.5,
    seed: int = 0,
    scenarios: tuple[Scenario, ...] = FILTER_SCENARIOS,
    on_scenario: Callable[[Scenario], None] | None = None,
) -> dict[str, Any]:
    """Run every scenario in ``work``; return the table as plain data, the reference first."""
    data = digits_partition(work, ranks, alpha, seed)
    shared = ("--local-epochs", "1", "--batch-size", "16", "--eval-every", "2")
    rows = []
    for scenario in scenarios:
        if on_scenario is not None:
            on_scenario(scenario)
        row = run_scenario(scenario, data, work / "runs", ranks, rounds, seed, shared)
        row["curve"] = evaluation_curve(row["run"], "samples_processed")
        metrics = read_metrics(Path(row["run"]))
        hidden = metrics.get("hidden_fraction")
        row["hidden_fraction_final"] = None if hidden is None else float(np.nanmean(hidden[-1]))
        # forward passes that re-scored hidden samples: not training, but not free either
        rescored = metrics.get("filter_rescored")
        row["samples_rescored"] = 0.0 if rescored is None else float(np.nansum(rescored[-1]))
        row["samples_processed"] = row["curve"]["samples_processed"][-1]
        rows.append(row)
    target = rows[0]["avg_model_accuracy"]
    for row in rows:
        at = first_reaching(row["curve"]["avg_model_accuracy"], target)
        row["samples_to_reference_accuracy"] = None if at is None else row["curve"]["samples_processed"][at]
        row["time_to_reference_accuracy_s"] = None if at is None else row["curve"]["wall_s"][at]
        reference = rows[0]
        row["samples_ratio_to_reference"] = _ratio(
            row["samples_to_reference_accuracy"], reference["samples_to_reference_accuracy"]
        )
        row["time_ratio_to_reference"] = _ratio(
            row["time_to_reference_accuracy_s"], reference["time_to_reference_accuracy_s"]
        )
    return {
        "benchmark": "filter",
        "data": f"digits, dirichlet:alpha={alpha}, {ranks} nodes",
        "ranks": ranks,
        "rounds": rounds,
        "local_epochs": 1,
        "batch_size": 16,
        "seed": seed,
        "reference": scenarios[0].name,
        "target_accuracy": target,
        "rows": rows,
    }


def _ratio(value: float | None, reference: float | None) -> float | None:
    return None if value is None or not reference else value / reference
