"""Draw a partition: overview, heterogeneity, a label-by-node heatmap and a per-node table.

Everything fits an 80-column terminal: the heatmap has at most 64 columns (nodes
are binned beyond that) and the per-node table is cut to its first and last rows
for large partitions (``--json`` has them all).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from fedgossip.data.manifest import Manifest

__all__ = ["render_partition"]

_HEAT_COLUMNS = 64
_SHADES = " ·░▒▓█"  # share of a node's samples in a class: 0, <10%, <30%, <50%, <75%, ≥75%
_SHADE_EDGES = (0.0, 0.1, 0.3, 0.5, 0.75)
_TABLE_ALL = 64  # up to this many nodes the table lists every one
_TABLE_HEAD, _TABLE_TAIL = 24, 8
_LABEL_WIDTH = 10


def render_partition(manifest: Manifest, directory: Path, console: Console) -> None:
    """Print the whole partition report."""
    histograms = np.array([s.label_histogram for s in manifest.shards], dtype=np.int64)
    for section in (
        _overview(manifest, directory),
        _heterogeneity(manifest.stats),
        _heatmap(histograms, manifest.classes),
        _node_table(histograms, manifest.classes),
    ):
        console.print(section)
        console.print()


def _overview(manifest: Manifest, directory: Path) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    test = (
        "source's own split" if manifest.test_fraction is None else f"{manifest.test_fraction:.0%} held out"
    )
    rows = [
        ("partition", str(directory)),
        ("source", f"{manifest.source}  (sha256 {manifest.source_sha256[:12]})"),
        ("scheme", manifest.scheme),
        ("seed", str(manifest.seed)),
        ("nodes", str(manifest.nodes)),
        ("samples", f"{manifest.train_size:,} train · {manifest.test.size:,} test ({test})"),
        ("classes", f"{len(manifest.classes)} · input shape {tuple(manifest.input_shape)}"),
    ]
    if manifest.replication > 1:
        rows.append(("replication", f"each sample on {manifest.replication} nodes"))
    dispatch = manifest.extra.get("dispatch")
    if isinstance(dispatch, dict):
        rows.extend(_dispatch_rows(dispatch))
    for key, value in rows:
        table.add_row(key, value)
    return table


def _dispatch_rows(records: dict) -> list[tuple[str, str]]:
    """Return overview rows for a dispatch partition; missing or odd entries show as ``-``."""
    rows = [
        ("clusters", f"{_fmt(records.get('clusters'))} k-means centres"),
        ("features", str(records.get("features", "-"))),
        ("cluster purity", f"{_share(records.get('cluster_purity'))}  (majority label per cluster)"),
        ("node purity", f"{_share(records.get('node_purity_mean'))} mean  (majority label per node)"),
    ]
    achieved, asked = records.get("balance_achieved"), records.get("balance_asked")
    if isinstance(achieved, list) and len(achieved) == 2 and all(map(_is_number, achieved)):
        balance = f"{achieved[0]:.2f}–{achieved[1]:.2f}× the even share"
        if isinstance(asked, list) and len(asked) == 2 and _is_number(asked[0]):
            upper = f"{asked[1]:g}" if _is_number(asked[1]) else "∞"  # None: no upper bound
            balance += f" (asked {asked[0]:g}–{upper}×)"
        rows.append(("balance", balance))
    return rows


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _share(value) -> str:
    return f"{value:.3f}" if _is_number(value) else "-"


def _heterogeneity(stats: dict) -> Table:
    table = Table(title="heterogeneity", title_justify="left", show_header=True, header_style="bold")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("meaning", style="dim")
    cpn = stats.get("classes_per_node", {})
    rows = [
        (
            "label TV distance",
            _pair(stats, "label_tv_distance_mean", "label_tv_distance_max"),
            "mean / max; 0 = IID, 1 = disjoint",
        ),
        (
            "node size",
            f"{stats.get('size_mean', 0):,.0f} ± CV {stats.get('size_cv', 0):.2f}",
            f"mean; range {stats.get('size_min', 0):,}–{stats.get('size_max', 0):,}",
        ),
        (
            "classes per node",
            " / ".join(_fmt(cpn.get(k)) for k in ("min", "median", "max")),
            f"min / median / max (p25 {_fmt(cpn.get('p25'))}, p75 {_fmt(cpn.get('p75'))})",
        ),
    ]
    for row in rows:
        table.add_row(*row)
    return table


def _pair(stats: dict, mean_key: str, max_key: str) -> str:
    return f"{stats.get(mean_key, 0):.3f} / {stats.get(max_key, 0):.3f}"


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _heatmap(histograms: np.ndarray, classes: list[str]) -> Group:
    """Return classes as rows and nodes as columns, shaded by each node's share of the class."""
    nodes = len(histograms)
    bins = np.array_split(np.arange(nodes), min(nodes, _HEAT_COLUMNS))
    binned = np.stack([histograms[b].sum(axis=0) for b in bins])  # [columns, classes]
    shares = binned / np.maximum(binned.sum(axis=1, keepdims=True), 1)
    levels = np.searchsorted(_SHADE_EDGES, shares, side="left")  # 0 only for an exact 0
    span = f"nodes 0–{nodes - 1} left to right"
    if nodes > _HEAT_COLUMNS:
        span += f", each column ~{nodes / len(bins):.1f} nodes"
    title = Text(f"label mix per node ({span}; darker = larger share)", style="bold")
    lines = [title]
    cell_width = min(4, _HEAT_COLUMNS // len(bins))  # few nodes: wider cells, easier to read
    for c, name in enumerate(classes):
        label = name[:_LABEL_WIDTH].rjust(_LABEL_WIDTH)
        cells = "".join(_SHADES[level] * cell_width for level in levels[:, c])
        lines.append(Text(f"{label} │{cells}│"))
    legend = "  ".join(f"{_SHADES[i]}≥{_SHADE_EDGES[i - 1]:.0%}" for i in range(2, len(_SHADES)))
    lines.append(Text(f"{'':>{_LABEL_WIDTH}}  {_SHADES[1]}>0  {legend}", style="dim"))
    return Group(*lines)


def _node_table(histograms: np.ndarray, classes: list[str]) -> Table:
    nodes = len(histograms)
    table = Table(title="nodes", title_justify="left", header_style="bold")
    table.add_column("node", justify="right")
    table.add_column("size", justify="right")
    table.add_column("classes", justify="right")
    table.add_column("top labels (share of node)", overflow="ellipsis", no_wrap=True)
    shown = list(range(nodes))
    if nodes > _TABLE_ALL:
        shown = [*range(_TABLE_HEAD), -1, *range(nodes - _TABLE_TAIL, nodes)]
    for node in shown:
        if node < 0:
            hidden = nodes - _TABLE_HEAD - _TABLE_TAIL
            table.add_row("…", "", "", f"[dim]{hidden} more nodes; --json lists them all[/]")
            continue
        counts = histograms[node]
        size = int(counts.sum())
        table.add_row(str(node), f"{size:,}", str(int((counts > 0).sum())), _top_labels(counts, classes))
    return table


def _top_labels(counts: np.ndarray, classes: list[str], top: int = 3) -> str:
    size = counts.sum()
    if size == 0:
        return "[dim]empty[/]"
    order = np.argsort(-counts, kind="stable")[:top]
    return "  ".join(f"{classes[c][:_LABEL_WIDTH]} {counts[c] / size:.0%}" for c in order if counts[c] > 0)
