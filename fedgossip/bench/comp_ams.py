"""Accuracy against bytes per worker: COMP-AMS beside uncompressed AMSGrad and allreduce SGD.

Every scenario takes one local step per round, so rounds are steps and all of
them train for the same number of steps on the same Dirichlet partition of
digits. For each rank count the reference is the uncompressed run of the same
algorithm (``comp-ams --compressor none``, distributed AMSGrad): COMP-AMS with
top-k 1% should stay within a point of it while sending ≥ 20× fewer bytes per
worker. Allreduce SGD shows what the usual dense baseline reaches meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fedgossip.bench.jobs import Scenario, compare_with_reference, digits_partition, run_scenario
from fedgossip.errors import ConfigError

__all__ = ["DEFAULT_STEPS", "AMSGRAD_LR", "COMP_AMS_SCENARIOS", "bench_comp_ams"]

# Top-k 1% sends each coordinate about once in 100 steps: it needs a few thousand steps to catch
# up with uncompressed AMSGrad (digits, 8 nodes: 2.5 points behind at 1,500 steps, 0.3 at 3,000).
DEFAULT_STEPS = 3000  # local steps of every scenario (one per round)
AMSGRAD_LR = 0.001  # learning rate of every comp-ams scenario
EVALUATIONS = 20  # about this many evaluations per run, whatever the steps

_AMSGRAD = ("--optimizer", "amsgrad", "--lr", str(AMSGRAD_LR))

COMP_AMS_SCENARIOS = (
    Scenario("AMSGrad fp32", "comp-ams", "none", options=_AMSGRAD),
    Scenario(
        "COMP-AMS top-1%",
        "comp-ams",
        "topk:ratio=0.01",
        max_accuracy_drop=1.0,
        min_byte_ratio=20,
        options=_AMSGRAD,
    ),
    Scenario("COMP-AMS block-sign", "comp-ams", "sign:block=256", options=_AMSGRAD),
    Scenario("allreduce SGD", "allreduce", "none", options=("--optimizer", "sgd", "--lr", "0.05")),
)


def bench_comp_ams(
    work: Path,
    ranks: Iterable[int] = (8, 16),
    steps: int = DEFAULT_STEPS,
    alpha: float = 0.5,
    seed: int = 0,
    scenarios: tuple[Scenario, ...] = COMP_AMS_SCENARIOS,
    on_scenario: Callable[[Scenario, int], None] | None = None,
) -> dict[str, Any]:
    """Run every scenario at every rank count in ``work``; return the table as plain data.

    Rows are compared with the first scenario at the same rank count; each row
    carries its ``ranks`` and ``bytes_per_worker`` (bytes sent by the mean rank).
    ``on_scenario(scenario, ranks)`` is told before each job starts.
    """
    ranks = tuple(ranks)
    problems = []
    if not ranks or min(ranks) < 2:
        problems.append(f"expecting rank counts of at least 2, got {ranks}")
    if steps < 1:
        problems.append(f"expecting at least one step, got {steps}")
    if problems:
        raise ConfigError("; ".join(problems))
    eval_every = max(1, steps // EVALUATIONS)
    # a constant learning rate, as AMSGrad is usually run: a schedule decaying to 0 would cut off
    # the residual error feedback still owes
    one_step = ("--local-steps", "1", "--eval-every", str(eval_every), "--lr-schedule", "constant")
    rows = []
    for count in ranks:
        data = digits_partition(work, count, alpha, seed)
        group = []
        for scenario in scenarios:
            if on_scenario is not None:
                on_scenario(scenario, count)
            runs = work / "runs" / f"{count}-nodes"
            row = run_scenario(scenario, data, runs, count, steps, seed, one_step)
            row.update(
                ranks=count, bytes_per_worker=row["bytes_sent_per_rank"], options=list(scenario.options)
            )
            group.append(row)
        compare_with_reference(group, scenarios)
        rows += group
    return {
        "benchmark": "comp-ams",
        "data": f"digits, dirichlet:alpha={alpha}",
        "ranks": list(ranks),
        "steps": steps,
        "local_steps": 1,
        "lr_schedule": "constant",
        "eval_every": eval_every,
        "seed": seed,
        "reference": scenarios[0].name,
        "rows": rows,
    }
