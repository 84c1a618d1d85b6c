"""Faulty neighbours: every attack against every aggregator, beside the attack-free run of the same shards.

Every job is a real ``fedgossip train`` of digits (Dirichlet α, one partition),
all nodes co-hosted in one process (``--nodes``): the figures are accuracies of
the honest nodes, which do not depend on placement. Two attackers, the same for
every row: dpsgd over a ring and an exponential graph, and fedavg with two of
its clients malicious. Rows: the attack-free run with each aggregator (what a
defence costs when nobody attacks), then each attack × each aggregator.

Each aggregator is set for the attackers it faces: ``clip`` (no τ: each node's
own) and ``trimmed-mean`` take b = the most attacking neighbours any honest
node has on that graph (2 clients at fedavg's server, where krum takes f = 2).

Goal (ClippedGossip's claim, per graph): with ``clip`` every attack leaves the
honest average model within 3 points of the attack-free run (with ``mean``),
where ``mean`` loses more than 20 points to at least one attack.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedgossip.bench.jobs import Scenario, run_scenario
from fedgossip.data.create import PartitionRequest, create_partition
from fedgossip.topology.base import make_topology

__all__ = ["ATTACKS", "CLIP_WITHIN_POINTS", "MEAN_LOSES_POINTS", "bench_byzantine", "check_goals"]

ATTACKS = ("sign-flip", "gaussian", "alie", "ipm", "label-flip", "dissensus")
GOSSIP_AGGREGATORS = ("mean", "clip", "trimmed-mean", "median")
SERVER_AGGREGATORS = (*GOSSIP_AGGREGATORS, "krum")
CLIP_WITHIN_POINTS = 3.0
MEAN_LOSES_POINTS = 20.0

TRAINING = ("--local-epochs", "1", "--lr", "0.05", "--lr-schedule", "constant")


def bench_byzantine(
    work: Path,
    nodes: int = 16,
    rounds: int = 20,
    attackers: tuple[int, ...] = (3, 11),
    alpha: float = 0.5,
    seed: int = 0,
    topologies: tuple[str, ...] = ("ring", "exponential"),
    attacks: tuple[str, ...] = ATTACKS,
    with_fedavg: bool = True,
    on_scenario: Callable[[Scenario, str], None] | None = None,
) -> dict[str, Any]:
    """Train every (attack, aggregator) on each setting in ``work``; return the table as plain data."""
    data = _partition(work, nodes, alpha, seed)
    ids = ",".join(map(str, attackers))
    settings = [(f"dpsgd, {t}", "dpsgd", t, nodes, attackers) for t in topologies]
    if with_fedavg:  # node 0 is the server: clients 1..nodes; the same shards, shifted by one
        settings.append(("fedavg", "fedavg", "star", nodes + 1, tuple(node + 1 for node in attackers)))
    rows = []
    for setting, algorithm, topology, hosted, faulty in settings:
        b = _most_faulty_neighbours(topology, hosted, faulty)
        aggregators = SERVER_AGGREGATORS if algorithm == "fedavg" else GOSSIP_AGGREGATORS
        specs = {name: _spec(name, b) for name in aggregators}
        faulty_ids = ",".join(map(str, faulty))
        jobs = [("none", name) for name in aggregators] + [(a, name) for a in attacks for name in aggregators]
        for attack, aggregator in jobs:
            options = ["--robust", specs[aggregator], "--topology", topology, *TRAINING]
            if attack != "none":
                options += ["--attack", attack, "--attackers", faulty_ids]
            scenario = Scenario(f"{attack} {aggregator}", algorithm, "none", options=tuple(options))
            if on_scenario is not None:
                on_scenario(scenario, f"{setting}; job {len(rows) + 1}")
            runs = work / "runs" / setting.replace(", ", "-")
            row = run_scenario(scenario, data, runs, 1, rounds, seed, nodes=hosted)
            row.update(setting=setting, attack=attack, aggregator=specs[aggregator], rule=aggregator)
            row["honest_min_accuracy"] = _honest_min(Path(row["run"]))
            rows.append(row)
    _compare(rows)
    result = {
        "benchmark": "byzantine",
        "data": f"digits, dirichlet:alpha={alpha}, {nodes} nodes",
        "attackers": ids,
        "rounds": rounds,
        "training": " ".join(TRAINING),
        "seed": seed,
        "settings": [setting[0] for setting in settings],
        "rows": rows,
    }
    result["goals"] = check_goals(result)
    return result


def _partition(work: Path, nodes: int, alpha: float, seed: int) -> Path:
    data = work / f"digits-{nodes}-alpha{alpha}-seed{seed}"
    if not (data / "partition.json").exists():
        create_partition(PartitionRequest("digits", f"dirichlet:alpha={alpha}", nodes, seed), data)
    return data


def _most_faulty_neighbours(topology: str, nodes: int, faulty: tuple[int, ...]) -> int:
    graph, bad = make_topology(topology, nodes, 0), set(faulty)
    honest = [node for node in range(nodes) if node not in bad]
    return max(1, max(sum(j in bad for j in graph.neighbors(node)) for node in honest))


def _spec(name: str, b: int) -> str:
    return {"clip": f"clip:b={b}", "trimmed-mean": f"trimmed-mean:b={b}", "krum": f"krum:f={b}"}.get(
        name, name
    )


def _honest_min(run: Path) -> float | None:
    summary = json.loads((run / "summary.json").read_text())
    return summary["final"]["test_accuracy"]["min"]


def _compare(rows: list[dict[str, Any]]) -> None:
    """Add each row's points against the attack-free run with ``mean`` of its setting, in place."""
    for row in rows:
        free = next(
            r for r in rows if r["setting"] == row["setting"] and (r["attack"], r["rule"]) == ("none", "mean")
        )
        row["points_vs_attack_free"] = 100 * (row["avg_model_accuracy"] - free["avg_model_accuracy"])


def check_goals(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Return per dpsgd setting: clip's worst attack against the attack-free run, and mean's worst."""
    goals = []
    for setting in result["settings"]:
        attacked = [r for r in result["rows"] if r["setting"] == setting and r["attack"] != "none"]
        if not setting.startswith("dpsgd") or not attacked:
            continue
        clip = min((r for r in attacked if r["rule"] == "clip"), key=lambda r: r["points_vs_attack_free"])
        mean = min((r for r in attacked if r["rule"] == "mean"), key=lambda r: r["points_vs_attack_free"])
        met = (
            -clip["points_vs_attack_free"] <= CLIP_WITHIN_POINTS
            and -mean["points_vs_attack_free"] > MEAN_LOSES_POINTS
        )
        goals.append({
            "setting": setting,
            "goal": f"clip within {CLIP_WITHIN_POINTS:g} points of attack-free under every attack, "
                    f"where mean loses more than {MEAN_LOSES_POINTS:g} to one",
            "clip_worst": {"attack": clip["attack"], "points": clip["points_vs_attack_free"]},
            "mean_worst": {"attack": mean["attack"], "points": mean["points_vs_attack_free"]},
            "met": bool(met),
        })  # fmt: skip
    return goals
