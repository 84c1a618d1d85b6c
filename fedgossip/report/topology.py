"""Draw a topology: its size, degrees, diameter, how fast it mixes, and who talks to whom.

Fits an 80-column terminal; neighbour lists are drawn only for small graphs.
"""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fedgossip.topology import Topology

__all__ = ["render_topology"]

_LIST_NEIGHBOURS = 32  # up to this many nodes the report lists every node's neighbours


def render_topology(topology: Topology, stats: dict[str, Any], console: Console) -> None:
    """Print the overview (``stats`` from ``topology.stats()``) and, for small graphs, the neighbours."""
    console.print(_overview(topology, stats))
    console.print()
    if topology.num_nodes <= _LIST_NEIGHBOURS:
        console.print(_neighbour_table(topology))
    else:
        console.print(f"[dim]neighbour lists are shown for up to {_LIST_NEIGHBOURS} nodes[/]")


def _overview(topology: Topology, stats: dict[str, Any]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    low, high = stats["degree_min"], stats["degree_max"]
    mean = 2 * stats["edges"] / stats["nodes"]
    degree = f"{low} (every node)" if low == high else f"{low}–{high} (mean {mean:.2f})"
    hops = stats["diameter"]
    diameter = "infinite (disconnected)" if hops is None else f"{hops} hop{'' if hops == 1 else 's'}"
    rows = [
        ("topology", escape(stats["spec"])),
        ("nodes", f"{stats['nodes']:,}"),
        ("edges", f"{stats['edges']:,}"),
        ("degree", degree),
        ("diameter", diameter),
    ]
    gap = stats["spectral_gap"]
    if gap is None:  # a graph too big for its tiny gap to be resolved
        rows.append(("spectral gap", "[dim]not resolved (too small to compute on a graph this big)[/]"))
    else:
        rows.append(("spectral gap", f"{gap:.4g} [dim](Metropolis mixing matrix)[/]"))
        rows.append(("mixing", _mixing(gap)))
    for key, value in rows:
        table.add_row(key, value)
    return table


def _mixing(gap: float) -> str:
    """Say what the gap means: ||x_t − x̄||² ≤ (1 − gap)^(2t)·||x_0 − x̄||² for gossip x ← W x."""
    if gap >= 1 - 1e-9:
        return "one gossip round averages exactly"
    if gap <= 0:
        return "[red]models never reach consensus (disconnected)[/]"
    rounds = math.ceil(math.log(10) / (-2 * math.log1p(-gap)))
    return (
        f"each gossip round multiplies the consensus distance by at most {(1 - gap) ** 2:.3g} "
        f"(10× lower within {rounds:,} round{'' if rounds == 1 else 's'})"
    )


def _neighbour_table(topology: Topology) -> Table:
    table = Table(title="neighbours", title_justify="left", header_style="bold")
    table.add_column("node", justify="right")
    table.add_column("degree", justify="right")
    table.add_column("neighbours", overflow="fold")
    for node in range(topology.num_nodes):
        listed = _runs(topology.neighbors(node)) or "[dim]none[/]"
        table.add_row(str(node), str(topology.degree(node)), listed)
    return table


def _runs(nodes: tuple[int, ...]) -> str:
    """Write sorted node ids with runs of three or more shortened: ``0 2–31``."""
    parts: list[str] = []
    start = 0
    for end in range(1, len(nodes) + 1):
        if end < len(nodes) and nodes[end] == nodes[end - 1] + 1:
            continue
        run = nodes[start:end]
        parts.extend([f"{run[0]}–{run[-1]}"] if len(run) >= 3 else map(str, run))
        start = end
    return " ".join(parts)
