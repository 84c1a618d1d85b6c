"""``bench churn`` trains each method under each availability, compared with the method always online."""

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from fedgossip.bench.churn import METHODS, bench_churn
from fedgossip.report.bench_churn import render_churn

DPSGD, _, ASYNC_SWARM, _ = METHODS


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    work = tmp_path_factory.mktemp("churn")
    return bench_churn(work, nodes=4, rounds=2, availabilities=(1.0, 0.5), methods=(DPSGD, ASYNC_SWARM))


def test_each_method_runs_under_each_availability_and_is_compared_with_always(result):
    cells = [(row["method"], row["availability"], "run" in row) for row in result["rows"]]
    assert cells == [
        ("dpsgd", 1.0, True),
        ("dpsgd", 0.5, True),
        ("async swarm", 1.0, True),
        ("async swarm", 0.5, True),
    ]
    always, half = result["rows"][:2]
    assert json.loads((Path(always["run"]) / "run.json").read_text())["config"]["availability"] == "always"
    record = json.loads((Path(half["run"]) / "run.json").read_text())
    assert record["config"]["availability"] == "bernoulli:p=0.5"
    assert half["mean_online_fraction"] == record["availability"]["mean_online_fraction"] < 1
    drop = 100 * (half["avg_model_accuracy"] - always["avg_model_accuracy"])
    assert half["points_vs_always"] == pytest.approx(drop)
    assert always["points_vs_always"] == 0
    async_half = result["rows"][3]
    record = json.loads((Path(async_half["run"]) / "run.json").read_text())
    assert record["config"]["asynchronous"] and record["config"]["availability"] == "bernoulli:p=0.5"
    assert async_half["mean_online_fraction"] < 1
    console = Console(file=io.StringIO(), width=100)
    render_churn(result, console)
    shown = console.file.getvalue()
    assert f"{100 * half['avg_model_accuracy']:.1f}% ({half['points_vs_always']:+.1f})" in shown
