"""``bench comp-ams`` runs real mpiexec jobs and tables accuracy against bytes per worker."""

import io

import pytest
from click.testing import CliRunner
from rich.console import Console

from fedgossip.bench.comp_ams import COMP_AMS_SCENARIOS, DEFAULT_STEPS, bench_comp_ams
from fedgossip.bench.jobs import Scenario
from fedgossip.cli.main import cli
from fedgossip.errors import ConfigError
from fedgossip.report.bench import render_comp_ams


def test_comp_ams_benchmark_compares_every_scenario_with_uncompressed_amsgrad(tmp_path):
    reference = COMP_AMS_SCENARIOS[0]
    top_k = Scenario("top-1%", "comp-ams", "topk:ratio=0.01", 100.0, 20, options=reference.options)
    result = bench_comp_ams(tmp_path, ranks=(2,), steps=3, scenarios=(reference, top_k))
    assert result["ranks"] == [2] and result["steps"] == 3 and result["reference"] == reference.name
    fp32, compressed = result["rows"]
    assert [row["ranks"] for row in result["rows"]] == [2, 2]
    assert fp32["bytes_ratio_to_fp32"] == 1.0 and fp32["accuracy_drop_points"] == 0.0
    assert fp32["targets"] == {}
    for row in result["rows"]:
        assert row["bytes_per_worker"] == row["bytes_sent_per_rank"] > 0
    expected = fp32["bytes_sent_total"] / compressed["bytes_sent_total"]
    assert compressed["bytes_ratio_to_fp32"] == expected and expected > 20
    assert compressed["targets"] == {"accuracy within 100.0 points": True, "≥ 20× fewer bytes": True}
    assert (tmp_path / "runs" / "2-nodes" / "top-1pct" / "summary.json").exists()
    console = Console(file=io.StringIO(), width=80)
    render_comp_ams(result, console)
    table = console.file.getvalue()
    assert "top-1%" in table and "topk:ratio=0.01" in table and f"{expected:.3g}×" in table
    assert max(len(line) for line in table.splitlines()) <= 80


def test_comp_ams_benchmark_refuses_a_single_rank_and_no_steps(tmp_path):
    with pytest.raises(ConfigError, match=r"at least 2.*at least one step"):
        bench_comp_ams(tmp_path, ranks=(1, 8), steps=0)


def test_comp_ams_help_has_an_example():
    result = CliRunner().invoke(cli, ["bench", "comp-ams", "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0 and "Example" in result.output
    assert "fedgossip bench comp-ams --ranks 8,16" in result.output
    # the CLI's default is written out for --help; it must be the module's
    assert f"[default: {DEFAULT_STEPS};" in " ".join(result.output.split())  # help text wraps


def test_comp_ams_ranks_below_two_is_a_usage_error(tmp_path):
    args = ["bench", "comp-ams", "--ranks", "8,1", "--work", str(tmp_path), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, args, env={"COLUMNS": "80"})
    assert result.exit_code == 2 and "'--ranks'" in result.output and "at least 2" in result.output
    assert not (tmp_path / "out").exists()
