"""Draw ``bench heterogeneity``: one table per node count and topology, the splits side by side."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fedgossip.report.figures import MISSING, ratio
from fedgossip.report.figures import size as byte_size

__all__ = ["render_heterogeneity", "method_line"]

_stderr = Console(stderr=True, highlight=False)


def method_line(method: Any, where: str) -> None:
    """Say which training job starts (each takes seconds; the grid takes minutes)."""
    options = "".join(f" {option}" for option in method.options)
    _stderr.print(
        escape(
            f"running {method.name} ({where}): {method.algorithm} --compressor {method.compressor}{options}"
        )
    )


def render_heterogeneity(result: dict[str, Any], console: Console) -> None:
    """Print average-model accuracy per split, points against fedavg on the last split, and bytes per node."""
    splits = list(result["splits"])
    last = splits[-1]
    for nodes in result["nodes"]:
        for topology in result["topologies"]:
            rows = [row for row in result["table"] if (row["nodes"], row["topology"]) == (nodes, topology)]
            console.print(_table(rows, splits, last, f"{nodes} nodes, {topology}"))
    seeds = ", ".join(map(str, result["seeds"]))
    console.print(
        f"[dim]{escape(result['data'])}, {result['rounds']} epochs, {escape(result['training'])}; "
        f"mean of seeds {seeds}; bytes per node on {escape(last)}; fedavg is a star (one more node, "
        "the server, its sends counted); allreduce and fedavg ignore the topology[/]"
    )
    for goal in result["goals"]:
        mark = "[green]✓[/]" if goal["met"] else "[red]✗[/]"
        points = goal["points_vs_fedavg"]
        by = MISSING if points is None else f"{points:+.2f} points"
        console.print(
            f"{mark} {goal['nodes']} nodes: {escape(goal['goal'])}: {escape(str(goal['method']))}, {by}"
        )


def _table(rows: list[dict[str, Any]], splits: list[str], last: str, title: str) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, header_style="bold", pad_edge=False)
    table.add_column("method", no_wrap=True)
    for split in splits:
        table.add_column(split.replace(" ", "\n", 1), justify="right")
    for header in ("vs fedavg\n(points)", "per node\nsent", "fewer\nthan dpsgd"):
        table.add_column(header, justify="right", no_wrap=True)
    for name in dict.fromkeys(row["scenario"] for row in rows):
        by_split = {row["split"]: row for row in rows if row["scenario"] == name}
        on_last = by_split.get(last)
        table.add_row(
            escape(name),
            *(_percent(by_split.get(split)) for split in splits),
            MISSING if on_last is None else f"{on_last['points_vs_fedavg']:+.1f}",
            MISSING if on_last is None else byte_size(on_last["bytes_per_node"]),
            MISSING if on_last is None else ratio(on_last["fewer_bytes_than_dpsgd"]),
        )
    return table


def _percent(row: dict[str, Any] | None) -> str:
    return MISSING if row is None else f"{100 * row['avg_model_accuracy']:.1f}%"
