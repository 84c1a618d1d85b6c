"""``bench checkpoint`` runs the same job with and without checkpoints and reports their ratio."""

from __future__ import annotations

import io

from rich.console import Console

from fedgossip.bench.checkpoint import bench_checkpoint
from fedgossip.report.bench_data import render_checkpoint


def test_checkpoint_benchmark_compares_with_the_job_without(tmp_path):
    result = bench_checkpoint(tmp_path, ranks=2, rounds=6, every=2, repeats=1)
    plain, checkpointed = result["rows"]
    assert checkpointed["ratio_to_reference"] == checkpointed["best_wall_s"] / plain["best_wall_s"]
    # checkpoints at rounds 2 and 4 (none after the last round); only the last one is kept
    assert checkpointed["checkpoints"] == 2 and checkpointed["last_committed_round"] == 4
    assert checkpointed["same_accuracy"]  # writing a checkpoint must not change the training
    assert checkpointed["bytes_per_rank_file"] > 0
    console = Console(file=io.StringIO(), width=80)
    render_checkpoint(result, console)
    table = console.file.getvalue()
    assert "checkpoint every 2" in table and max(len(line) for line in table.splitlines()) <= 80
