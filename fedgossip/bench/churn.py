"""Devices that come and go: accuracy and wall time of each method as fewer nodes are online per round.

Every job is a real ``fedgossip train`` of digits (Dirichlet α, one partition), all nodes
co-hosted in one process (``--nodes``), under ``--availability bernoulli:p=P`` (``always``
for P = 1): each node is online in a round with probability P, the same schedule for
every method of a seed. Each row is compared with the same method at P = 1. fedavg runs
one more node, its server (always online), over the same shards. For async swarm a round
is an interaction window: each node makes at most one interaction per window it is online.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedgossip.bench.jobs import Scenario, digits_partition, run_scenario

__all__ = ["AVAILABILITIES", "METHODS", "availability_spec", "bench_churn"]

AVAILABILITIES = (1.0, 0.9, 0.7, 0.5)
METHODS = (
    Scenario("dpsgd", "dpsgd", "none"),
    Scenario("swarm", "swarm", "none"),
    Scenario("async swarm", "swarm", "none", options=("--async",)),
    Scenario("fedavg", "fedavg", "none"),
)
TRAINING = ("--local-epochs", "1", "--lr", "0.05", "--lr-schedule", "constant", "--topology", "ring")


def availability_spec(p: float) -> str:
    """Return the ``--availability`` of online probability ``p`` (``always`` for 1)."""
    return "always" if p == 1 else f"bernoulli:p={p:g}"


def bench_churn(
    work: Path,
    nodes: int = 16,
    rounds: int = 20,
    availabilities: tuple[float, ...] = AVAILABILITIES,
    alpha: float = 0.5,
    seed: int = 0,
    methods: tuple[Scenario, ...] = METHODS,
    on_scenario: Callable[[Scenario, str], None] | None = None,
) -> dict[str, Any]:
    """Train every method under every availability in ``work``; return the table as plain data."""
    data = digits_partition(work, nodes, alpha, seed)
    training = (*TRAINING, "--eval-every", str(rounds))  # one evaluation, at the end: the figure
    rows = []
    for method in methods:
        hosted = nodes + 1 if method.algorithm == "fedavg" else nodes  # + the server, holding no shard
        for p in availabilities:
            base = {"method": method.name, "availability": p, "spec": availability_spec(p)}
            scenario = Scenario(
                f"{method.name} p={p:g}",
                method.algorithm,
                method.compressor,
                options=(*method.options, "--availability", base["spec"]),
            )
            if on_scenario is not None:
                on_scenario(scenario, f"{hosted} nodes")
            row = run_scenario(scenario, data, work / "runs", 1, rounds, seed, training, nodes=hosted)
            record = json.loads((Path(row["run"]) / "run.json").read_text())
            online = record["availability"]["mean_online_fraction"]
            rows.append({**base, **row, "mean_online_fraction": online})
    for row in rows:
        always = next((r for r in rows if r["method"] == row["method"] and r["availability"] == 1), None)
        if always is not None:
            row["points_vs_always"] = 100 * (row["avg_model_accuracy"] - always["avg_model_accuracy"])
    return {
        "benchmark": "churn",
        "data": f"digits, dirichlet:alpha={alpha}, {nodes} nodes",
        "nodes": nodes,
        "rounds": rounds,
        "availabilities": list(availabilities),
        "training": " ".join(training),
        "seed": seed,
        "rows": rows,
    }
