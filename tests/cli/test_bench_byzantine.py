"""``bench byzantine`` trains every attack against every aggregator and compares with the attack-free run."""

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from fedgossip.bench.byzantine import CLIP_WITHIN_POINTS, MEAN_LOSES_POINTS, bench_byzantine
from fedgossip.report.bench_byzantine import render_byzantine


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    work = tmp_path_factory.mktemp("byzantine")
    return bench_byzantine(
        work, nodes=8, rounds=2, attackers=(1, 4), topologies=("ring",), attacks=("sign-flip",)
    )


def _row(result, setting, attack, rule):
    (row,) = [r for r in result["rows"] if (r["setting"], r["attack"], r["rule"]) == (setting, attack, rule)]
    return row


def test_every_attack_meets_every_aggregator_beside_the_attack_free_runs(result):
    assert result["settings"] == ["dpsgd, ring", "fedavg"]
    ring = [(r["attack"], r["aggregator"]) for r in result["rows"] if r["setting"] == "dpsgd, ring"]
    # on a ring with attackers 1 and 4 every honest node has at most one attacking neighbour: b = 1
    rules = ["mean", "clip:b=1", "trimmed-mean:b=1", "median"]
    assert ring == [("none", rule) for rule in rules] + [("sign-flip", rule) for rule in rules]
    server = [r["aggregator"] for r in result["rows"] if r["setting"] == "fedavg" and r["attack"] == "none"]
    assert server == ["mean", "clip:b=2", "trimmed-mean:b=2", "median", "krum:f=2"]  # both clients reach it
    attacked = json.loads(
        (Path(_row(result, "dpsgd, ring", "sign-flip", "clip")["run"]) / "run.json").read_text()
    )
    assert attacked["attackers"] == [1, 4] and attacked["config"]["robust"] == "clip:b=1"
    # fedavg's node 0 is the server: the same shards' clients are nodes 2 and 5
    fedavg = json.loads((Path(_row(result, "fedavg", "sign-flip", "krum")["run"]) / "run.json").read_text())
    assert fedavg["attackers"] == [2, 5] and fedavg["nodes"] == 9
    free = json.loads((Path(_row(result, "dpsgd, ring", "none", "mean")["run"]) / "run.json").read_text())
    assert free["attackers"] == [] and free["config"]["attack"] == "none"


def test_rows_are_compared_with_the_attack_free_mean_of_their_setting(result):
    for row in result["rows"]:
        free = _row(result, row["setting"], "none", "mean")
        assert row["points_vs_attack_free"] == pytest.approx(
            100 * (row["avg_model_accuracy"] - free["avg_model_accuracy"])
        )
        summary = json.loads((Path(row["run"]) / "summary.json").read_text())
        assert row["honest_min_accuracy"] == summary["final"]["test_accuracy"]["min"]
    (goal,) = result["goals"]  # dpsgd settings only
    clip = _row(result, "dpsgd, ring", "sign-flip", "clip")["points_vs_attack_free"]
    mean = _row(result, "dpsgd, ring", "sign-flip", "mean")["points_vs_attack_free"]
    assert goal["clip_worst"]["points"] == clip and goal["mean_worst"]["points"] == mean
    assert goal["met"] == (-clip <= CLIP_WITHIN_POINTS and -mean > MEAN_LOSES_POINTS)
    console = Console(file=io.StringIO(), width=80)
    render_byzantine(result, console)
    shown = console.file.getvalue()
    assert "krum:f=2" in shown and max(len(line) for line in shown.splitlines()) <= 80
