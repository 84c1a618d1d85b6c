"""``fedgossip bench codecs`` as a user runs it: tiny vectors, a few compressors, good input and bad."""

from __future__ import annotations

import json

import pytest
import torch

from fedgossip.bench.codecs import NAIVE
from fedgossip.compress import COMPRESSORS

SIZES = (1000, 4097)  # 4097: a last partial block, and a count that is not a multiple of 8
SPECS = ("none", "uniform:bits=8", "topk:ratio=0.01")


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """Run the benchmark once for the module; return the CLI result and the saved JSON."""
    from click.testing import CliRunner

    from fedgossip.cli.main import cli

    out = tmp_path_factory.mktemp("bench")
    args = ["bench", "codecs", "--sizes", ",".join(map(str, SIZES)), "--repeats", "1", "--out", str(out)]
    for spec in SPECS:
        args += ["--compressor", spec]
    threads = torch.get_num_threads()
    result = CliRunner().invoke(cli, args, catch_exceptions=False, env={"COLUMNS": "80"})
    assert torch.get_num_threads() == threads  # the benchmark's single thread does not leak out
    assert result.exit_code == 0, result.output
    return result, json.loads((out / "codecs.json").read_text())


def test_codecs_saves_one_row_per_compressor_and_size_plus_the_naive_reference(measured):
    _, saved = measured
    assert saved["benchmark"] == "codecs" and saved["single_threaded"] and saved["threads"] == 1
    assert [copy["size"] for copy in saved["copy"]] == list(SIZES)
    assert sorted((row["compressor"], row["size"]) for row in saved["rows"]) == sorted(
        (spec, size) for spec in (*SPECS, NAIVE) for size in SIZES
    )
    assert {"cpu", "numpy", "torch", "numba"} <= saved["machine"].keys()


def test_codec_rows_have_consistent_figures(measured):
    _, saved = measured
    copy_gbps = {copy["size"]: copy["gbps"] for copy in saved["copy"]}
    for row in saved["rows"]:
        size = row["size"]
        assert row["encode_s"] > 0 and row["decode_s"] > 0 and row["gbps"] > 0
        assert row["gbps"] == pytest.approx(4 * size / (row["encode_s"] + row["decode_s"]) / 1e9)
        assert row["copy_gbps"] == copy_gbps[size] > 0
        assert row["ratio_to_copy"] == pytest.approx(row["gbps"] / row["copy_gbps"])
        assert row["compression_ratio"] == pytest.approx(4 * size / row["payload_bytes"])
        if row["compressor"] != NAIVE:
            assert row["payload_bytes"] == COMPRESSORS.create(row["compressor"]).nbytes(size)


def test_reconstruction_errors_match_what_each_code_promises(measured):
    _, saved = measured
    rows = {(row["compressor"], row["size"]): row for row in saved["rows"]}
    for size in SIZES:
        assert rows["none", size]["rel_error"] == 0
        assert rows["none", size]["compression_ratio"] == 1
        nearest, naive = rows["uniform:bits=8", size], rows[NAIVE, size]
        assert 0 < nearest["rel_error"] < 0.01
        # The naive torch row is the same code (1024-value blocks, min and step as float32) written
        # with one torch op per pass: same bytes, same error up to rounding ties.
        assert naive["payload_bytes"] == nearest["payload_bytes"]
        assert naive["rel_error"] == pytest.approx(nearest["rel_error"], rel=0.01)
        assert nearest["rel_error"] < rows["topk:ratio=0.01", size]["rel_error"] < 1  # keeps the largest 1%


def test_targets_apply_to_canonical_specs_only(measured):
    _, saved = measured
    for row in saved["rows"]:
        expected = 0.25 if row["compressor"] == "uniform:bits=8" else None  # nearest is uniform's default
        assert row["target_ratio_to_copy"] == expected
        if expected is None:
            assert row["target_met"] is None
        else:
            assert row["target_met"] == (row["ratio_to_copy"] >= expected)


def test_table_fits_80_columns_and_progress_goes_to_stderr(measured):
    result, _ = measured
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    for spec in (*SPECS, "copy (np.copyto)", NAIVE):
        assert spec in result.stdout
    assert "saved " in result.stdout
    steps = len(SIZES) * (len(SPECS) + 2)
    assert len(result.stderr.splitlines()) == steps
    assert f"[{steps}/{steps}] {NAIVE}, 4,097 values" in result.stderr


@pytest.mark.parametrize("sizes", ["1000,x", "0", "1000,-5", "1e6", ""])
def test_bad_sizes_is_a_usage_error_and_writes_nothing(run_cli, tmp_path, sizes):
    result = run_cli("bench", "codecs", "--sizes", sizes, "--compressor", "none", "--out", tmp_path / "out")
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "'--sizes'" in errors[0] and "positive integers" in errors[0]
    assert not (tmp_path / "out").exists()


def test_unknown_compressor_is_one_red_line_and_writes_nothing(run_cli, tmp_path):
    result = run_cli(
        "bench", "codecs", "--sizes", "100", "--compressor", "none", "--compressor", "moebius",
        "--out", tmp_path / "out",
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "\n" not in result.stderr.strip()
    assert "unknown compressor 'moebius'; known: " in result.stderr
    assert not (tmp_path / "out").exists()


def test_help_has_an_example(run_cli):
    result = run_cli("bench", "codecs", "--help")
    assert result.exit_code == 0 and "Example" in result.output and "--compressor" in result.output
