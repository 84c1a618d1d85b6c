"""Accuracy against bytes: compressed gossip beside float32 gossip, same data, graph and rounds.

Each scenario is a real ``mpiexec -n N fedgossip train`` job on one Dirichlet
partition of digits over a ring; the reference is the float32 D-PSGD run of
the same benchmark, so the figures that matter are the accuracy difference
and the byte ratio against it, not the seconds of this machine.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedgossip.bench.jobs import (
    Scenario,
    compare_with_reference,
    digits_partition,
    find_mpiexec,
    run_scenario,
)

__all__ = ["Scenario", "SCENARIOS", "bench_gossip", "find_mpiexec"]

SCENARIOS = (
    Scenario("fp32 dpsgd", "dpsgd", "none"),
    Scenario("CHOCO 8-bit", "dpsgd", "uniform:bits=8", max_accuracy_drop=0.5, min_byte_ratio=3.9),
    Scenario("CHOCO 4-bit", "dpsgd", "uniform:bits=4", max_accuracy_drop=1.0, min_byte_ratio=7.0),
    Scenario("swarm 4-bit", "swarm", "uniform:bits=4"),
    Scenario("CHOCO top-1%", "dpsgd", "topk:ratio=0.01"),
)


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
    data = digits_partition(work, ranks, alpha, seed)
    rows = []
    for scenario in scenarios:
        if on_scenario is not None:
            on_scenario(scenario)
        rows.append(run_scenario(scenario, data, work / "runs", ranks, rounds, seed, ("--topology", "ring")))
    compare_with_reference(rows, scenarios)
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
