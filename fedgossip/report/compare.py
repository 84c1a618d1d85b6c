"""Draw several runs side by side: their accuracy curves overlaid, then a table of their figures."""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fedgossip.report.chart import COLOURS, MARKERS, Series, line_chart
from fedgossip.report.figures import MISSING, curve_accuracy, number, ratio, seconds, size
from fedgossip.report.run import status_markup

__all__ = ["render_compare"]

_CHART_WIDTH, _CHART_HEIGHT = 60, 12

# (label, how to get the figure, which value is best: max, min or None, how to show it).
# The best value of a row is bold.
_Row = tuple[str, Callable[[dict[str, Any]], Any], Callable[[list], Any] | None, Callable[[Any], str]]
_ROWS: list[_Row] = [
    ("algorithm", lambda s: s["algorithm"], None, str),
    ("compressor", lambda s: s["compressor"], None, str),
    ("topology", lambda s: s["topology"].get("spec"), None, str),
    ("spectral gap", lambda s: s["topology"].get("spectral_gap"), None, number),
    ("ranks", lambda s: s["ranks"], None, str),
    ("partition", lambda s: s["partition"]["scheme"], None, str),
    ("label TV distance", lambda s: s["partition"]["label_tv_distance_mean"], None, lambda v: number(v, 3)),
    ("last round", lambda s: s["final"]["round"], None, str),
    ("avg model accuracy", lambda s: s["final"]["avg_model_accuracy"], max, number),
    ("accuracy, rank mean", lambda s: s["final"]["test_accuracy"]["mean"], max, number),
    ("accuracy, rank min", lambda s: s["final"]["test_accuracy"]["min"], max, number),
    ("test loss, rank mean", lambda s: s["final"]["test_loss"]["mean"], min, number),
    ("consensus distance", lambda s: s["final"]["consensus_distance"], None, number),
    ("sent, total", lambda s: s["communication"]["bytes_sent_total"], min, size),
    ("sent, rank max", lambda s: s["communication"]["bytes_sent_per_rank_max"], min, size),
    ("compression", lambda s: s["communication"]["compression_ratio"], None, ratio),
    ("compute, rank mean", lambda s: s["time"]["compute_s"], None, seconds),
    ("comm, rank mean", lambda s: s["time"]["comm_s"], min, seconds),
    ("wall", lambda s: s["time"]["wall_s"], min, seconds),
]


def render_compare(summaries: Sequence[dict[str, Any]], paths: Sequence[Path], console: Console) -> None:
    """Print the runs' legend, accuracy against rounds and against MB sent, and a side-by-side table."""
    keys = [_key(i) for i in range(len(summaries))]
    console.print("[bold]runs[/]")
    for i, (summary, path) in enumerate(zip(summaries, paths, strict=True)):
        _, measured = curve_accuracy(summary)
        console.print(
            f"  [{_colour(i)}]{_marker(i)} {keys[i]}[/]  {escape(str(summary.get('name') or path))}  "
            f"{status_markup(summary['status'])}  [dim]({measured})[/]"
        )
    console.print()
    for axis, label in (("round", "round"), ("mb_sent_total", "MB sent, all nodes")):
        series = [
            Series(keys[i], s["curve"][axis] or [], curve_accuracy(s)[0] or [], _marker(i), _colour(i))
            for i, s in enumerate(summaries)
        ]
        title = f"test accuracy vs {label.split(',')[0]}"
        console.print(
            line_chart(series, width=_CHART_WIDTH, height=_CHART_HEIGHT, title=title, x_label=label)
        )
        console.print()
    console.print(_table(summaries, keys))


def _table(summaries: Sequence[dict[str, Any]], keys: list[str]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    table.add_column("")
    for i, key in enumerate(keys):
        table.add_column(f"[{_colour(i)}]{_marker(i)} {key}[/]", justify="right", overflow="fold")
    for label, figure, best, show in _ROWS:
        values = [_get(figure, s) for s in summaries]
        known = [v for v in values if v is not None]
        winner = best(known) if best and len(known) > 1 and len(set(known)) > 1 else None
        cells = []
        for value in values:
            text = MISSING if value is None else escape(show(value))
            cells.append(f"[bold]{text}[/]" if winner is not None and value == winner else text)
        table.add_row(label, *cells)
    return table


def _get(figure: Callable[[dict[str, Any]], Any], summary: dict[str, Any]) -> Any:
    try:
        return figure(summary)
    except (KeyError, TypeError, AttributeError):
        return None


def _key(index: int) -> str:
    letters = string.ascii_uppercase
    return letters[index] if index < len(letters) else f"R{index + 1}"


def _marker(index: int) -> str:
    return MARKERS[index % len(MARKERS)]


def _colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]
