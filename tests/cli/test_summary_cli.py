"""``fedgossip summary|runs|compare`` on hand-made run directories, as a user runs them."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from fedgossip.cli.main import FedGossipGroup
from fedgossip.cli.summary import compare, runs, summary
from fedgossip.errors import DataError
from fedgossip.records import (
    REQUIRED_KEYS,
    MetricsWriter,
    create_run_dir,
    summarize,
    update_run_status,
    write_run_json,
    write_summary,
)


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")


def invoke(command, *args):
    return CliRunner().invoke(command, [str(a) for a in args])


def fits_80_columns(text):
    return max(len(line) for line in text.splitlines()) <= 80


def make_run(out, name, algorithm="swarm", compressor="qsgd:bits=5", scale=1.0, evals=4):
    """Write a 3-rank run whose accuracy rises over ``evals`` evaluations; return its directory."""
    run_dir = create_run_dir(out, name)
    write_run_json(
        run_dir,
        {
            "name": name,
            "status": "running",
            "started_at": "2024-05-01T12:00:00+00:00",
            "config": {"algorithm": algorithm, "compressor": compressor, "topology": "ring", "rounds": 40},
            "world_size": 3,
            "topology": {"spec": "ring", "spectral_gap": 0.5},
            "partition": {
                "path": "datasets/digits-3",
                "scheme": "dirichlet:alpha=0.1",
                "stats": {"label_tv_distance_mean": 0.625},
            },
        },
    )
    writer = MetricsWriter(run_dir, 3)
    for i in range(1, evals + 1):
        writer.append(
            10 * i,
            1.5 * i,
            {
                "test_accuracy": np.array([0.6, 0.9, 0.75]) * i / evals,
                "test_loss": np.array([1.0, 0.4, 0.7]) * evals / i,
                "bytes_sent": np.array([1000, 2000, 3000]) * scale * i / evals,
                "fp32_bytes_sent": np.array([4000, 8000, 12000]) * i / evals,
                "compute_s": np.array([1.0, 2.0, 3.0]) * i / evals,
                "comm_s": np.array([0.5, 0.25, 0.75]) * i / evals,
            },
            {"avg_model_accuracy": 0.8 * i / evals, "consensus_distance": 0.125 * evals / i},
        )
    update_run_status(run_dir, "completed")
    return run_dir


def test_summary_shows_the_key_figures_in_80_columns(tmp_path):
    run_dir = make_run(tmp_path, "20240501-120000-swarm-digits-3")
    result = invoke(summary, run_dir)
    assert result.exit_code == 0, result.output
    out = result.output
    for figure in [
        "20240501-120000-swarm-digits-3",
        "completed",
        "swarm",
        "qsgd:bits=5",
        "ring, spectral gap 0.5000",
        "dirichlet:alpha=0.1",
        "label TV distance 0.625",
        "final evaluation (round 40)",
        "0.7500   0.6000   0.9000",  # final test accuracy: mean, min, max over ranks
        "0.8000",  # average model
        "0.1250",  # consensus distance
        "2 kB mean · 3 kB max",
        "6 kB",  # sent in total
        "24 kB",  # as float32
        "4× (fp32 equivalent ÷ sent)",
        "2.0 s (33% of wall)",  # compute
        "0.5 s (8% of wall)",  # communication
        "6.0 s",  # wall
        "test accuracy vs round",
        "test accuracy vs MB sent",
    ]:
        assert figure in out, figure
    assert fits_80_columns(out)


def test_summary_of_a_failed_run_names_the_error_and_round(tmp_path):
    run_dir = make_run(tmp_path, "r", evals=1)
    update_run_status(run_dir, "failed", error="rank 2 diverged: loss is NaN", failed_round=17)
    out = invoke(summary, run_dir).output
    assert "failed at round 17: rank 2 diverged: loss is NaN" in out
    assert fits_80_columns(out)


def test_summary_before_any_evaluation_still_renders(tmp_path):
    run_dir = make_run(tmp_path, "r", evals=0)
    result = invoke(summary, run_dir)
    assert result.exit_code == 0, result.output
    assert "none yet" in result.output and "no data to chart yet" in result.output


def test_summary_json_has_every_required_key(tmp_path):
    run_dir = make_run(tmp_path, "r")
    data = json.loads(invoke(summary, run_dir, "--json").output)
    for key in REQUIRED_KEYS:
        node = data
        for part in key.split("."):
            assert part in node, key
            node = node[part]
    assert data["communication"]["compression_ratio"] == 4.0
    assert data["curve"]["round"] == [10, 20, 30, 40]


def test_summary_reads_a_complete_summary_json(tmp_path):
    run_dir = make_run(tmp_path, "r")
    saved = summarize(run_dir)
    write_summary(run_dir, {**saved, "algorithm": "as-saved"})
    assert json.loads(invoke(summary, run_dir, "--json").output)["algorithm"] == "as-saved"


def test_runs_lists_every_run(tmp_path):
    make_run(tmp_path, "20240501-120000-swarm-digits-3")
    make_run(tmp_path, "20240501-130000-dpsgd-digits-3", algorithm="dpsgd", compressor="none")
    (tmp_path / "20240501-140000-broken").mkdir()
    (tmp_path / "20240501-140000-broken" / "run.json").write_text("{")
    result = invoke(runs, tmp_path)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "runs in" in out and "(3)" in out
    assert "20240501-120000-swarm-digits-3" in out and "20240501-130000-dpsgd-digits-3" in out
    assert "dpsgd" in out and "0.800" in out and "6 kB" in out
    assert "unreadable" in out and "not readable JSON" in out
    assert fits_80_columns(out)
    rows = json.loads(invoke(runs, tmp_path, "--json").output)
    assert [r["algorithm"] for r in rows] == ["swarm", "dpsgd", None]


def test_runs_of_an_empty_directory_says_how_to_start_one(tmp_path):
    result = invoke(runs, tmp_path)
    assert result.exit_code == 0 and "no runs in" in result.output


def test_compare_overlays_curves_and_tables_runs_side_by_side(tmp_path):
    a = make_run(tmp_path, "20240501-120000-swarm-digits-3")
    b = make_run(tmp_path, "20240501-130000-dpsgd-digits-3", algorithm="dpsgd", compressor="none", scale=4)
    result = invoke(compare, a, b)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "* A  20240501-120000-swarm-digits-3" in out
    assert "+ B  20240501-130000-dpsgd-digits-3" in out
    assert out.count("test accuracy vs") == 2 and "MB sent, all nodes" in out
    chart = out[out.index("test accuracy vs round") : out.index("test accuracy vs MB")]
    assert "*" in chart and "+" in chart
    for row in ("algorithm", "compression", "avg model accuracy", "wall"):
        assert row in out
    assert "4×" in out and "1×" in out  # B sent as many bytes as fp32
    assert fits_80_columns(out)


def test_compare_json_lists_each_summary_with_its_path(tmp_path):
    a, b = make_run(tmp_path, "a"), make_run(tmp_path, "b", scale=2)
    data = json.loads(invoke(compare, a, b, "--json").output)
    assert [d["path"] for d in data] == [str(a), str(b)]
    assert [d["communication"]["compression_ratio"] for d in data] == [4.0, 2.0]


def test_compare_needs_two_runs(tmp_path):
    result = invoke(compare, make_run(tmp_path, "a"))
    assert result.exit_code == 2 and "at least two" in result.output


@pytest.mark.parametrize("command", [summary, runs, compare])
def test_help_has_examples(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0 and "Example" in result.output


@pytest.mark.parametrize(
    ("name", "args"),
    [("summary", ["nope"]), ("runs", ["nope"]), ("compare", ["nope", "nope2"])],
)
def test_unknown_path_is_one_red_line_and_exit_1(tmp_path, name, args):
    # The root group turns a FedGossipError into one line; a group of these commands does the same.
    group = FedGossipGroup(commands={"summary": summary, "runs": runs, "compare": compare})
    result = CliRunner().invoke(group, [name, *(str(tmp_path / a) for a in args)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert str(tmp_path / "nope") in result.stderr


def test_unknown_path_raises_a_data_error_from_the_command_itself(tmp_path):
    result = invoke(summary, tmp_path / "nope")
    assert result.exit_code == 1 and isinstance(result.exception, DataError)


def test_an_error_quotes_emoji_codes_and_markup_as_given(run_cli, tmp_path):
    # rich would draw ":x:" as an emoji and take "[red]" as markup; the path must come back verbatim.
    missing = tmp_path / ":x:[red]nosuch"
    result = run_cli("summary", missing)
    assert result.exit_code == 1
    assert f"{missing} is not a run directory" in result.output
    assert "❌" not in result.output
