"""``fedgossip plot`` on real runs: the image files it writes, and its one-line errors."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fedgossip.cli.main import cli
from fedgossip.records import MetricsWriter, create_run_dir, write_run_json

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
from matplotlib import image as mpimage  # noqa: E402

_MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-", "svg": b"<svg"}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two tiny real runs, fp32 and 4-bit, on 4 nodes hosted by one rank, evaluated every round."""
    out = tmp_path_factory.mktemp("runs")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "80"}
    for name, compressor in [("fp32-run", "none"), ("qsgd4-run", "qsgd:bits=4")]:
        command = [sys.executable, "-m", "fedgossip", "train", "--nodes", "4", "--rounds", "3"]
        command += ["--eval-every", "1", "--compressor", compressor, "--out", str(out), "--name", name]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    return out / "fp32-run", out / "qsgd4-run"


def plot(*args):
    return CliRunner().invoke(cli, ["plot", *map(str, args)])


def line_colours(png: Path) -> set[tuple[int, ...]]:
    """Return the saturated colours of a PNG: the lines (axes, text and grid are grey)."""
    pixels = np.round(mpimage.imread(png)[..., :3] * 255).astype(int)
    saturated = pixels[(pixels.max(axis=2) - pixels.min(axis=2)) > 120]
    colours, counts = np.unique(saturated, axis=0, return_counts=True)
    # Anti-aliased edges give many rare shades; a drawn line gives hundreds of pixels of one colour.
    return {tuple(c) for c, n in zip(colours, counts, strict=True) if n >= 100}


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_each_format_is_written_with_its_magic_bytes(two_runs, tmp_path, fmt):
    out = tmp_path / f"figure.{fmt}"
    result = plot(*two_runs, "--x", "bytes", "-o", out)
    assert result.exit_code == 0, result.output
    head = out.read_bytes()[:4096]
    assert _MAGIC[fmt] in head
    assert out.stat().st_size > 5_000
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no staging file left


def test_png_is_not_blank_and_has_one_line_colour_per_run(two_runs, tmp_path):
    one, two = tmp_path / "one.png", tmp_path / "two.png"
    assert plot(two_runs[0], "-o", one).exit_code == 0
    assert plot(*two_runs, "-o", two).exit_code == 0
    pixels = mpimage.imread(two)[..., :3]
    assert pixels.std() > 0.05
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50
    assert len(line_colours(one)) == 1
    assert len(line_colours(two)) == 2


def test_svg_names_each_run_in_the_legend_and_labels_the_axes(two_runs, tmp_path):
    out = tmp_path / "figure.svg"
    # Text as text, so the labels can be searched for in the file.
    matplotlib.rcParams["svg.fonttype"] = "none"
    try:
        assert plot(*two_runs, "--x", "wall", "--y", "loss", "-o", out).exit_code == 0
    finally:
        matplotlib.rcParams["svg.fonttype"] = "path"
    text = out.read_text()
    for expected in ["fp32-run", "qsgd4-run", "wall time (s)", "test loss of the average model"]:
        assert expected in text


def test_bytes_axis_is_log_scale(two_runs, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    scales = []
    saved = Figure.savefig

    def record(figure, *args, **kwargs):
        scales.append((figure.axes[0].get_xscale(), figure.axes[0].get_xlabel()))
        return saved(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    assert plot(two_runs[0], "--x", "bytes", "-o", tmp_path / "b.png").exit_code == 0
    assert plot(two_runs[0], "--x", "round", "-o", tmp_path / "r.png").exit_code == 0
    assert scales[0] == ("log", "bytes sent per node (cumulative, mean over nodes)")
    assert scales[1][0] == "linear"


def hand_made_run(parent, name):
    """A run directory with a valid run.json and no metrics.h5 yet."""
    run_dir = create_run_dir(parent, name)
    write_run_json(run_dir, {"name": name, "status": "running", "config": {"algorithm": "fedavg"}})
    return run_dir


@pytest.mark.parametrize(
    "case, message",
    [
        ("suffix", "its name must end in .png, .svg, .pdf"),
        ("missing", "is not a run directory"),
        ("no-metrics", "has no evaluations in metrics.h5 yet"),
        ("no-consensus", "records no consensus_distance"),
        ("no-folder", "does not exist; create it first"),
    ],
)
def test_bad_input_is_one_error_line_and_no_file(two_runs, tmp_path, case, message):
    out, extra = tmp_path / "figure.png", []
    run = two_runs[0]
    if case == "suffix":
        out = tmp_path / "figure.jpg"
    elif case == "missing":
        run = tmp_path / "nope"
    elif case == "no-folder":
        out = tmp_path / "absent" / "figure.png"
    else:
        run = hand_made_run(tmp_path, case)
        if case == "no-consensus":
            MetricsWriter(run, 1).append(1, 0.5, {"bytes_sent": np.ones(1)}, {"consensus_distance": None})
        extra = ["--y", "consensus"]
    result = plot(run, *extra, "-o", out)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.output
    assert not out.exists()
    assert not list(tmp_path.glob("**/.*partial"))


def test_without_matplotlib_the_error_says_how_to_get_it(two_runs, tmp_path, monkeypatch):
    # None in sys.modules makes `import matplotlib` raise ImportError, as on a machine without it.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "figure.png"
    result = plot(two_runs[0], "-o", out)
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: fedgossip plot needs matplotlib: pip install 'fedgossip[plot]' "
        "(bash launch/quickstart.sh installs it)"
    )
    assert not out.exists()
