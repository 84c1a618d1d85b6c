"""``bench dispatch|filter|share-data`` run real jobs and compare each scenario with its reference."""

from __future__ import annotations

import io

import numpy as np
from rich.console import Console

from fedgossip.bench.dispatch import bench_dispatch
from fedgossip.bench.filtering import bench_filter
from fedgossip.bench.jobs import first_reaching
from fedgossip.bench.share_data import bench_share_data
from fedgossip.report.bench_data import render_dispatch, render_filter, render_share_data


def _table(render, result) -> str:
    console = Console(file=io.StringIO(), width=80)
    render(result, console)
    table = console.file.getvalue()
    assert max(len(line) for line in table.splitlines()) <= 80
    return table


def test_first_reaching_is_the_first_evaluation_at_or_above_the_target():
    assert first_reaching(np.array([0.5, 0.8, 0.7, 0.9]), 0.8) == 1
    assert first_reaching(np.array([0.5, 0.6]), 0.8) is None


def test_dispatch_benchmark_routes_test_points_by_the_saved_rule(tmp_path):
    result = bench_dispatch(tmp_path, ranks=2, rounds=2, schemes=("dispatch", "iid"))
    dispatch, iid = result["rows"]
    assert dispatch["routing"] == "dispatch rule" and iid["routing"] == "random"
    assert 0 < dispatch["stats"]["cluster_purity"] <= 1 and iid["stats"] == {}
    for row in result["rows"]:
        assert 0 <= row["local_routed_accuracy"] <= 1 and 0 <= row["avg_model_accuracy"] <= 1
    assert "dispatch rule" in _table(render_dispatch, result)


def test_filter_benchmark_counts_samples_to_the_reference_accuracy(tmp_path):
    result = bench_filter(tmp_path, ranks=2, rounds=4)
    reference, *filtered = result["rows"]
    assert result["target_accuracy"] == reference["avg_model_accuracy"]
    assert reference["samples_ratio_to_reference"] == 1.0 and reference["hidden_fraction_final"] is None
    for row in filtered:
        # the same rounds of one epoch each, part of every epoch hidden: fewer samples in all
        assert row["samples_processed"] < reference["samples_processed"]
        assert 0 <= row["hidden_fraction_final"] < 1
    assert "hide 30%" in _table(render_filter, result)


def test_share_data_benchmark_spends_the_shared_bytes_on_rounds_too(tmp_path):
    result = bench_share_data(tmp_path, ranks=2, rounds=4, share="budget=8,bits=4,select=random")
    gossip, sharing, longer = result["rows"]
    assert gossip["data_bytes_sent_total"] == 0 and sharing["data_bytes_sent_total"] > 0
    assert sharing["bytes_sent_total"] == gossip["bytes_sent_total"]  # the model traffic is unchanged
    # the longer run spends at least as many extra bytes as the shared data cost
    assert longer["rounds"] == 4 + result["extra_rounds"]
    assert longer["extra_mb"] >= sharing["extra_mb"] > 0
    assert "share-data" in _table(render_share_data, result)
