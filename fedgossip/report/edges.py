"""The busiest edges of a run's traffic matrix, as a terminal table."""

from __future__ import annotations

from rich import box
from rich.table import Table

from fedgossip.report.figures import size

__all__ = ["BUSIEST", "busiest_edges_table"]

BUSIEST = 8


def busiest_edges_table(edges: list[list[int]], top: int = BUSIEST) -> Table | None:
    """Return the ``top`` directed pairs by model bytes, with their share of all; None without edges."""
    # a summary.json edited by hand may hold anything: only whole [int, int, int] rows are shown
    if not isinstance(edges, list) or not all(_is_edge(row) for row in edges):
        return None
    total = sum(row[2] for row in edges)
    if not edges or total <= 0:
        return None
    # ties broken by pair, so the table is the same on every run of the same matrix
    busiest = sorted(edges, key=lambda row: (-row[2], row[0], row[1]))[:top]
    title = f"busiest edges ({min(top, len(edges))} of {len(edges)}, model bytes sent)"
    table = Table(title=title, box=box.SIMPLE, title_justify="left")
    for column in ("sender node", "receiver node", "bytes", "share"):
        table.add_column(column, justify="right")
    for sender, receiver, sent in busiest:
        table.add_row(str(sender), str(receiver), size(sent), f"{100 * sent / total:.1f}%")
    return table


def _is_edge(row: object) -> bool:
    return (
        isinstance(row, list)
        and len(row) == 3
        and all(isinstance(value, int) and not isinstance(value, bool) for value in row)
    )
