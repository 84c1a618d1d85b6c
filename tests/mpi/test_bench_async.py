"""``bench async`` runs real mpiexec jobs and says when each reached the sync run's final accuracy."""

import io

import numpy as np
from rich.console import Console

from fedgossip.bench.async_swarm import ASYNC_SCENARIOS, bench_async, time_to_accuracy
from fedgossip.report.bench import render_async


def test_time_to_accuracy_is_the_first_evaluation_at_or_above_the_target():
    wall = np.array([1.0, 2.0, 3.0, 4.0])
    assert time_to_accuracy(wall, np.array([0.5, 0.8, 0.7, 0.9]), 0.8) == 2.0
    assert time_to_accuracy(wall, np.array([0.5, 0.6, 0.7, 0.75]), 0.8) is None


def test_async_benchmark_compares_with_the_sync_run(tmp_path):
    result = bench_async(tmp_path, ranks=2, rounds=4, local_steps=2, slowdown="ranks=0:factor=2")
    sync, asynchronous, allreduce = result["rows"]
    assert result["target_accuracy"] == sync["avg_model_accuracy"]
    # the reference reaches its own final accuracy by its last evaluation at the latest
    assert sync["time_to_reference_accuracy_s"] <= sync["wall_s"]
    assert list(asynchronous["targets"]) == ["≤ 0.6× sync's wall time"]
    reached = asynchronous["time_to_reference_accuracy_s"]
    if reached is not None:
        assert asynchronous["time_ratio_to_reference"] == reached / sync["wall_s"]
    assert len(allreduce["curve"]["wall_s"]) == 2  # --eval-every 2 over 4 rounds
    assert [row["scenario"] for row in result["rows"]] == [s.name for s in ASYNC_SCENARIOS]
    console = Console(file=io.StringIO(), width=80)
    render_async(result, console)
    table = console.file.getvalue()
    assert "async swarm" in table and max(len(line) for line in table.splitlines()) <= 80
