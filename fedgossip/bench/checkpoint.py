"""What checkpoints cost: the same training job with and without ``--checkpoint-every``, side by side.

Both are real ``mpiexec`` jobs on one Dirichlet partition of digits with the
same settings; the figure is the ratio of their wall times (and of the
time spent per round), plus the size of one checkpoint. The two runs must end
with the same accuracy: writing a checkpoint may not change the training.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedgossip.bench.jobs import Scenario, digits_partition, run_scenario
from fedgossip.records.checkpoint import latest_checkpoint

__all__ = ["bench_checkpoint"]


def bench_checkpoint(
    work: Path,
    ranks: int = 16,
    rounds: int = 100,
    every: int = 10,
    alpha: float = 0.5,
    seed: int = 0,
    repeats: int = 2,
    on_scenario: Callable[[Scenario], None] | None = None,
) -> dict[str, Any]:
    """Run the job without and with checkpoints ``repeats`` times each, alternating; return the table."""
    data = digits_partition(work, ranks, alpha, seed)
    plain = Scenario("no checkpoints", "dpsgd", "none")
    checkpointed = Scenario(
        f"checkpoint every {every}", "dpsgd", "none", options=("--checkpoint-every", str(every))
    )
    shared = ("--local-steps", "10", "--eval-every", "10")
    rows: dict[str, list[dict[str, Any]]] = {plain.name: [], checkpointed.name: []}
    for _ in range(repeats):  # alternating, so a slow spell of the machine hits both alike
        for scenario in (plain, checkpointed):
            if on_scenario is not None:
                on_scenario(scenario)
            rows[scenario.name].append(
                run_scenario(scenario, data, work / "runs", ranks, rounds, seed, shared)
            )
    table = []
    for name, runs in rows.items():
        best = min(runs, key=lambda row: row["wall_s"])
        table.append(
            {
                "scenario": name,
                "wall_s": [row["wall_s"] for row in runs],
                "best_wall_s": best["wall_s"],
                "avg_model_accuracy": best["avg_model_accuracy"],
                "run": best["run"],
            }
        )
    reference, measured = table
    info = latest_checkpoint(Path(measured["run"]))
    checkpoint_dir = Path(measured["run"]) / "checkpoints"
    sizes = [path.stat().st_size for path in checkpoint_dir.glob("round-*/rank-*.pt")]
    measured["checkpoints"] = rounds // every - (1 if rounds % every == 0 else 0)
    measured["bytes_per_rank_file"] = max(sizes) if sizes else None
    measured["last_committed_round"] = None if info is None else info.round
    measured["ratio_to_reference"] = measured["best_wall_s"] / reference["best_wall_s"]
    measured["same_accuracy"] = measured["avg_model_accuracy"] == reference["avg_model_accuracy"]
    reference["ratio_to_reference"] = 1.0
    return {
        "benchmark": "checkpoint",
        "data": f"digits, dirichlet:alpha={alpha}, {ranks} nodes",
        "ranks": ranks,
        "rounds": rounds,
        "every": every,
        "local_steps": 10,
        "repeats": repeats,
        "seed": seed,
        "rows": table,
    }
