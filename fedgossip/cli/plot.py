"""``fedgossip plot``: runs' curves as an image file for a paper; reads only files."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["plot"]

_X = ("round", "bytes", "wall")
_Y = ("accuracy", "loss", "consensus")


@click.command("plot")
@click.argument("run_dirs", metavar="RUN [RUN...]", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--x", "x", type=click.Choice(_X), default="round", show_default=True, help="Horizontal axis.")
@click.option("--y", "y", type=click.Choice(_Y), default="accuracy", show_default=True, help="Vertical axis.")
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Image to write: .png, .svg or .pdf (the suffix picks the format).",
)
def plot(run_dirs: tuple[Path, ...], x: str, y: str, out: Path) -> None:
    """Draw one line per RUN into an image: accuracy, loss or consensus against rounds, bytes or time.

    Bytes are those sent per node (mean over nodes), on a log scale. The
    legend names each line after its run. Needs matplotlib
    (pip install 'fedgossip[plot]').

    \b
    Examples:
      fedgossip plot results/*-digits-64 --x bytes --y accuracy -o accuracy-vs-bytes.pdf
      fedgossip plot results/run-a results/run-b --y consensus -o consensus.png
    """
    from fedgossip.records import read_run_json
    from fedgossip.records.metrics import read_metrics
    from fedgossip.report.plot_curves import run_curve
    from fedgossip.report.plot_figure import draw_figure, figure_format

    figure_format(out)  # a wrong suffix fails before any run is read
    curves = []
    for run_dir in run_dirs:
        record = read_run_json(run_dir)
        name = str(record.get("name") or run_dir.name)
        curves.append(run_curve(run_dir, name, read_metrics(run_dir), x, y))
    draw_figure(curves, x, y, out)
    click.echo(f"wrote {out}")
