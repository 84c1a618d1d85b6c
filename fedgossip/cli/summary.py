"""``fedgossip summary|runs|compare``: look at finished (or running) runs; reads only files."""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["summary", "runs", "compare"]

_RUN = click.Path(path_type=Path, file_okay=False)


@click.command("summary")
@click.argument("run", type=_RUN)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON instead of tables.")
def summary(run: Path, as_json: bool) -> None:
    """Show a run: final accuracy, traffic, time split and accuracy curves.

    RUN is a run directory under results/. Its summary.json is used when
    complete; otherwise the summary is computed from run.json and metrics.h5,
    so a running or crashed run can be looked at too.

    \b
    Examples:
      fedgossip summary results/20240501-120000-swarm-digits-64
      fedgossip summary results/20240501-120000-swarm-digits-64 --json | jq .communication
    """
    from fedgossip.records import load_summary
    from fedgossip.report.console import stdout
    from fedgossip.report.run import render_summary

    figures = load_summary(run)
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    render_summary(figures, stdout, run)


@click.command("runs")
@click.argument("directory", type=_RUN, default=Path("results"))
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON instead of lines.")
def runs(directory: Path, as_json: bool) -> None:
    """List the runs in DIRECTORY [default: results/] with status, accuracy and traffic.

    A run whose files cannot be read is listed with the reason.

    \b
    Examples:
      fedgossip runs
      fedgossip runs results/sweep-alpha --json | jq '.[] | select(.status == "failed") | .name'
    """
    from fedgossip.records import list_runs
    from fedgossip.report.console import stdout
    from fedgossip.report.run import render_runs

    rows = list_runs(directory)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    render_runs(rows, directory, stdout)


@click.command("compare")
@click.argument("run_dirs", metavar="RUN RUN...", nargs=-1, required=True, type=_RUN)
@click.option("--json", "as_json", is_flag=True, help="Print the summaries as a JSON list instead.")
def compare(run_dirs: tuple[Path, ...], as_json: bool) -> None:
    """Compare runs: accuracy curves overlaid, and their figures side by side.

    Curves are plotted against rounds and against megabytes sent by all ranks,
    which is how compressors and algorithms are compared fairly.

    \b
    Examples:
      fedgossip compare results/*-swarm-digits-64 results/*-dpsgd-digits-64
      fedgossip compare results/*-digits-64 --json | jq '.[].communication.compression_ratio'
    """
    from fedgossip.records import load_summary
    from fedgossip.report.compare import render_compare
    from fedgossip.report.console import stdout

    if len(run_dirs) < 2:
        raise click.BadParameter("give at least two run directories to compare", param_hint="RUN RUN...")
    summaries = [load_summary(run) for run in run_dirs]
    if as_json:
        rows = [{"path": str(p), **s} for p, s in zip(run_dirs, summaries, strict=True)]
        click.echo(json.dumps(rows, indent=2))
        return
    render_compare(summaries, list(run_dirs), stdout)
