"""Draw ``bench churn``: each method's accuracy and wall time per availability, points against always."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fedgossip.report.figures import MISSING

__all__ = ["render_churn"]


def render_churn(result: dict[str, Any], console: Console) -> None:
    """Print one row per method: accuracy (points against P = 1) and wall seconds per availability."""
    table = Table(
        title="availability (online probability per node and round)",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        header_style="bold",
        pad_edge=False,
    )
    table.add_column("method", no_wrap=True)
    for p in result["availabilities"]:
        table.add_column(f"p = {p:g}", justify="right", no_wrap=True)
    for method in dict.fromkeys(row["method"] for row in result["rows"]):
        cells = {row["availability"]: row for row in result["rows"] if row["method"] == method}
        table.add_row(escape(method), *(_cell(cells.get(p)) for p in result["availabilities"]))
    console.print(table)
    console.print(
        f"[dim]{escape(result['data'])}, {result['rounds']} rounds, {escape(result['training'])}, "
        f"seed {result['seed']}; average model's accuracy, points against p = 1, wall seconds; "
        "fedavg has one more node, its server; async swarm: a round is an interaction window[/]"
    )


def _cell(row: dict[str, Any] | None) -> str:
    if row is None or "run" not in row:
        return MISSING
    points = row.get("points_vs_always")
    against = "" if points is None or row["availability"] == 1 else f" ({points:+.1f})"
    return f"{100 * row['avg_model_accuracy']:.1f}%{against} {row['wall_s']:.0f}s"
