"""``bench scale`` runs real jobs: the default job on N, N/8 and 1 ranks, and many synthetic devices."""

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from fedgossip.bench.scale import bench_scale
from fedgossip.report.bench_scale import render_scale


def test_scale_benchmark_compares_placements_and_device_counts(tmp_path):
    result = bench_scale(
        tmp_path, nodes=8, rounds=2, devices=(40,), models=("logreg",), ranks=(1, 2), device_rounds=2,
        local_steps=2, max_samples=60,
    )  # fmt: skip
    # 8 nodes on 8 ranks, then on 8 // 8 = 1: the one-process row
    spread, single = result["placement"]["rows"]
    assert (spread["ranks"], single["ranks"]) == (8, 1) and spread["nodes"] == single["nodes"] == 8
    for row in (spread, single):
        record = json.loads((Path(row["run"]) / "run.json").read_text())
        assert record["ranks"] == row["ranks"] and len(record["peak_rss_mb"]) == row["ranks"]
        assert row["peak_rss_mb_total"] == pytest.approx(sum(record["peak_rss_mb"]))
        assert 0 < row["training_s"] < row["wall_s"]  # the job's wall time includes its start-up
    assert single["speedup"] == pytest.approx(spread["wall_s"] / single["wall_s"])
    assert single["memory_ratio"] == pytest.approx(spread["peak_rss_mb_total"] / single["peak_rss_mb_total"])
    assert spread["speedup"] == spread["memory_ratio"] == 1.0
    assert single["memory_ratio"] > 2  # one process holds one torch, not eight
    assert set(single["targets"]) == {"≥ 5.0× faster than 8 ranks", "≥ 10.0× less memory than 8 ranks"}
    devices = result["devices"]["rows"]
    # the reference (2 nodes on 2 ranks, one per process), then 40 devices on 1 and on 2 ranks
    assert [(row["nodes"], row["ranks"]) for row in devices] == [(2, 2), (40, 1), (40, 2)]
    reference = devices[0]
    for row in devices:
        steps = 2 * 2 * row["nodes"]  # rounds × local steps × nodes
        assert row["process_s_per_device_step"] == pytest.approx(row["training_s"] * row["ranks"] / steps)
        assert row["seconds_per_round"] == pytest.approx(row["training_s"] / 2)
    for row in devices[1:]:
        ratio = row["process_s_per_device_step"] / reference["process_s_per_device_step"]
        assert row["step_cost_ratio"] == pytest.approx(ratio)
        assert row["targets"] == {}  # the goal is stated for 1,000 nodes and more
    console = Console(file=io.StringIO(), width=80)
    render_scale(result, console)
    shown = console.file.getvalue()
    assert "logreg" in shown and max(len(line) for line in shown.splitlines()) <= 80
