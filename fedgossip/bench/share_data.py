"""Quantized data sharing: accuracy gained per MB, against spending the same MB on more gossip rounds.

On a strongly skewed partition (Dirichlet α=0.05: most nodes see one or two
classes) every scenario is a real ``mpiexec`` job. The reference gossips for
R rounds. ``share-data`` runs the same R rounds after each node sent every
neighbour a few quantized samples; the last scenario spends (at least) the
same extra bytes on more rounds of the reference instead. Each row says how
many extra MB it spent and how many points of average-model accuracy each MB
bought.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedgossip.bench.jobs import Scenario, digits_partition, run_scenario

__all__ = ["bench_share_data"]


def bench_share_data(
    work: Path,
    ranks: int = 16,
    rounds: int = 40,
    alpha: float = 0.05,
    seed: int = 0,
    share: str = "budget=32,bits=4,select=loss",
    on_scenario: Callable[[Scenario], None] | None = None,
) -> dict[str, Any]:
    """Run the three scenarios in ``work``; return the table as plain data, the reference first."""
    data = digits_partition(work, ranks, alpha, seed)
    shared = ("--local-steps", "10", "--eval-every", "5")
    reference = Scenario("gossip only", "dpsgd", "none")
    sharing = Scenario(f"share-data {share}", "dpsgd", "none", options=("--share-data", share))
    rows = [_run(reference, data, work, ranks, rounds, seed, shared, on_scenario)]
    rows.append(_run(sharing, data, work, ranks, rounds, seed, shared, on_scenario))
    per_round = rows[0]["bytes_sent_total"] / rounds
    extra_rounds = max(1, math.ceil(rows[1]["data_bytes_sent_total"] / per_round))
    longer = Scenario(f"gossip only, +{extra_rounds} rounds", "dpsgd", "none")
    rows.append(_run(longer, data, work, ranks, rounds + extra_rounds, seed, shared, on_scenario))
    base = rows[0]
    for row in rows:
        extra = (row["bytes_sent_total"] + row["data_bytes_sent_total"]) - base["bytes_sent_total"]
        row["extra_mb"] = extra / 1e6
        gain = 100 * (row["avg_model_accuracy"] - base["avg_model_accuracy"])
        row["gain_points"] = gain
        row["points_per_mb"] = gain / row["extra_mb"] if extra > 0 else None
    return {
        "benchmark": "share-data",
        "data": f"digits, dirichlet:alpha={alpha}, {ranks} nodes",
        "ranks": ranks,
        "rounds": rounds,
        "extra_rounds": extra_rounds,
        "share": share,
        "seed": seed,
        "reference": reference.name,
        "rows": rows,
    }


def _run(scenario, data, work, ranks, rounds, seed, shared, on_scenario) -> dict[str, Any]:
    if on_scenario is not None:
        on_scenario(scenario)
    row = run_scenario(scenario, data, work / "runs", ranks, rounds, seed, shared)
    row["rounds"] = rounds
    return row
