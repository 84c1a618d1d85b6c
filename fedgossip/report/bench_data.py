"""Draw the data-centric benchmarks: dispatching, importance filtering and quantized data sharing."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fedgossip.report.figures import MISSING

__all__ = ["render_dispatch", "render_filter", "render_share_data", "render_checkpoint", "scheme_line"]

_stderr = Console(stderr=True, highlight=False)


def scheme_line(scheme: str) -> None:
    """Say which partition of the dispatch benchmark is being made and trained on (each takes a minute)."""
    _stderr.print(escape(f"partitioning digits by {scheme}, training local models and a D-PSGD job"))


def _table() -> Table:
    return Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold", pad_edge=False)


def _percent(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.2f}%"


def render_dispatch(result: dict[str, Any], console: Console) -> None:
    """Print the table of ``bench_dispatch``: local models answering routed points, and the average model."""
    table = _table()
    table.add_column("scheme", no_wrap=True)
    table.add_column("routing", ratio=1)
    for header in ("local,\nrouted", "local, mean\nper node", "average\nmodel", "cluster\npurity"):
        table.add_column(header, justify="right", no_wrap=True)
    for row in result["rows"]:
        purity = row["stats"].get("cluster_purity")
        table.add_row(
            escape(row["scheme"].split(",")[0]),  # the first parameter; the JSON has the whole spec
            row["routing"],
            _percent(row["local_routed_accuracy"]),
            _percent(row["local_mean_node_accuracy"]),
            _percent(row["avg_model_accuracy"]),
            MISSING if purity is None else f"{purity:.2f}",
        )
    console.print(table)
    console.print(
        f"[dim]{escape(result['data'])}; local: each node's {result['model']} trained alone for "
        f"{result['local_epochs']} epochs; average model: D-PSGD, {result['rounds']} rounds; "
        f"seed {result['seed']}[/]"
    )


def render_filter(result: dict[str, Any], console: Console) -> None:
    """Print the table of ``bench_filter``: samples and wall time to the reference's final accuracy."""
    table = _table()
    table.add_column("scenario", ratio=1, min_width=10)
    headers = (
        "accuracy",
        "hidden\n(end)",
        "samples",
        "samples to\nref. acc.",
        "×",
        "time to\nref. acc.",
        "×",
    )
    for header in headers:
        table.add_column(header, justify="right", no_wrap=True)
    for row in result["rows"]:
        seconds = row["time_to_reference_accuracy_s"]
        table.add_row(
            escape(row["scenario"]),
            _percent(row["avg_model_accuracy"]),
            MISSING if row["hidden_fraction_final"] is None else f"{row['hidden_fraction_final']:.0%}",
            _thousands(row["samples_processed"]),
            _thousands(row["samples_to_reference_accuracy"]),
            _times(row["samples_ratio_to_reference"]),
            MISSING if seconds is None else f"{seconds:.1f} s",
            _times(row["time_ratio_to_reference"]),
        )
    console.print(table)
    console.print(
        f"[dim]{escape(result['data'])}, {result['rounds']} rounds of one local epoch, batch "
        f"{result['batch_size']}, seed {result['seed']}; samples summed over nodes; reference accuracy "
        f"{_percent(result['target_accuracy'])} ({escape(result['reference'])}, final)[/]"
    )


def _thousands(value: float | None) -> str:
    return MISSING if value is None else f"{value / 1e3:.1f}k"


def _times(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}"


def render_share_data(result: dict[str, Any], console: Console) -> None:
    """Print the table of ``bench_share_data``: accuracy gained per extra MB."""
    table = _table()
    table.add_column("scenario", ratio=1, min_width=12)
    for header in (
        "rounds",
        "accuracy",
        "model\nMB",
        "data\nMB",
        "extra\nMB",
        "gain\npoints",
        "points\nper MB",
    ):
        table.add_column(header, justify="right", no_wrap=True)
    for row in result["rows"]:
        table.add_row(
            escape(row["scenario"]),
            str(row["rounds"]),
            _percent(row["avg_model_accuracy"]),
            f"{row['bytes_sent_total'] / 1e6:.2f}",
            f"{row['data_bytes_sent_total'] / 1e6:.3f}",
            f"{row['extra_mb']:.3f}",
            f"{row['gain_points']:+.2f}",
            MISSING if row["points_per_mb"] is None else f"{row['points_per_mb']:+.1f}",
        )
    console.print(table)
    console.print(
        f"[dim]{escape(result['data'])}, D-PSGD on a ring, seed {result['seed']}; extra MB against "
        f"{escape(result['reference'])} ({result['rounds']} rounds)[/]"
    )


def render_checkpoint(result: dict[str, Any], console: Console) -> None:
    """Print the table of ``bench_checkpoint``: best wall time of each scenario and their ratio."""
    table = _table()
    table.add_column("scenario", ratio=1, min_width=12)
    for header in ("wall s\n(best)", "×", "accuracy", "file per\nrank"):
        table.add_column(header, justify="right", no_wrap=True)
    for row in result["rows"]:
        size = row.get("bytes_per_rank_file")
        table.add_row(
            escape(row["scenario"]),
            f"{row['best_wall_s']:.2f}",
            _times(row["ratio_to_reference"]),
            _percent(row["avg_model_accuracy"]),
            MISSING if size is None else f"{size / 1e3:.0f} kB",
        )
    console.print(table)
    console.print(
        f"[dim]{escape(result['data'])}, {result['rounds']} rounds of {result['local_steps']} local steps, "
        f"best of {result['repeats']} jobs each, seed {result['seed']}[/]"
    )
