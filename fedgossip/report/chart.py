"""A small text line chart: series drawn with marker characters on a character grid.

No plotting dependency: a chart is a grid of ``width`` × ``height`` cells, a
y axis labelled with its top, middle and bottom values, an x axis labelled with
its ends, and a legend. Lines between measured points are interpolated column by
column (and filled vertically where they jump), so a curve reads as a line, not
as scattered dots.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text

__all__ = ["MARKERS", "COLOURS", "Series", "line_chart"]

# Plain characters: every terminal and log file shows them one cell wide.
MARKERS = ("*", "+", "o", "x", "#", "@", "%", "&")
COLOURS = ("cyan", "magenta", "yellow", "green", "blue", "red", "bright_white", "bright_black")


@dataclass(frozen=True)
class Series:
    """One curve: its legend label, points (``None`` or NaN values are skipped) and look."""

    label: str
    x: Sequence[float | None]
    y: Sequence[float | None]
    marker: str = MARKERS[0]
    style: str = COLOURS[0]


def line_chart(
    series: Sequence[Series], *, width: int = 60, height: int = 12, title: str = "", x_label: str = ""
) -> Text:
    """Draw ``series`` on one chart and return it as (styled) text lines.

    The chart is ``width`` plot columns plus the y labels; the caller keeps it
    within the terminal. Without any finite point it says so in one line.
    """
    points = [_finite(s) for s in series]
    flat = [p for pts in points for p in pts]
    if not flat:
        return Text(f"{title}: no data to chart yet", style="dim")
    x_lo, x_hi = _span([x for x, _ in flat])
    y_lo, y_hi = _span([y for _, y in flat])
    grid: list[list[tuple[str, str] | None]] = [[None] * width for _ in range(height)]
    # Drawn last to first: where curves cross or coincide, the first series stays visible.
    for s, pts in reversed(list(zip(series, points, strict=True))):
        cells = [(_scale(x, x_lo, x_hi, width), _scale(y, y_lo, y_hi, height)) for x, y in pts]
        for col, row in _trace(cells):
            grid[row][col] = (s.marker, s.style)
    return _assemble(grid, series, title, x_label, (x_lo, x_hi), (y_lo, y_hi))


def _finite(series: Series) -> list[tuple[float, float]]:
    pairs = [
        (float(x), float(y))
        for x, y in zip(series.x, series.y, strict=False)
        if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)
    ]
    return sorted(pairs)


def _scale(value: float, lo: float, hi: float, cells: int) -> float:
    if math.isfinite(hi - lo):
        return (value - lo) / (hi - lo) * (cells - 1)
    # Ends of opposite sign near the largest float: halved, the difference fits.
    return (value / 2 - lo / 2) / (hi / 2 - lo / 2) * (cells - 1)


def _span(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if hi > lo:
        return lo, hi
    # One value only: centre it rather than divide by a zero range; never invent negative
    # values for a quantity that was zero (bytes sent by a single rank).
    if lo == 0:
        return 0.0, 0.5
    # Pad by a round step a digit below the value, and by whole units for a whole number, so the
    # ends read as ticks: round 3 spans 2 … 4 (not 2.85 … 3.15), accuracy 0.25 spans 0.24 … 0.26.
    pad = 10.0 ** (math.floor(math.log10(abs(lo))) - 1)
    if lo == int(lo):
        pad = max(pad, 1.0)
    if pad > 0:
        ends = _round_to(lo - pad, pad), _round_to(hi + pad, pad)
        if all(map(math.isfinite, ends)) and ends[0] < lo < ends[1]:
            return ends
    # Subnormal or near the largest float (a damaged metrics file): the nearest floats around it.
    below, above = math.nextafter(lo, -math.inf), math.nextafter(hi, math.inf)
    if math.isinf(above):
        return math.nextafter(below, -math.inf), hi
    if math.isinf(below):
        return lo, math.nextafter(above, math.inf)
    return below, above


def _round_to(value: float, step: float) -> float:
    # Rounded to the step, so 0.25 − 0.01 labels as 0.24, not 0.23999999999999999.
    steps = value / step
    return round(steps) * step if math.isfinite(steps) else value


def _trace(cells: list[tuple[float, float]]) -> list[tuple[int, int]]:
    """Return the grid cells of a polyline through ``cells`` (fractional column and row, sorted by column)."""
    previous = (round(cells[0][0]), round(cells[0][1]))
    drawn = [previous]
    for (x0, y0), (x1, y1) in itertools.pairwise(cells):
        c0, c1 = round(x0), round(x1)
        for col in range(c0 + 1, c1 + 1) if c1 > c0 else [c1]:
            t = (col - c0) / (c1 - c0) if c1 > c0 else 1.0
            row = round(y0 + t * (y1 - y0))
            # A jump of several rows from the previous column: fill it so the line stays connected.
            step = 1 if row > previous[1] else -1
            drawn.extend((col, r) for r in range(previous[1] + step, row, step))
            drawn.append((col, row))
            previous = (col, row)
    return drawn


def _tick(value: float) -> str:
    if abs(value) < 1e6 and value == int(value):
        return str(int(value))
    return f"{value:.3g}"


def _assemble(
    grid: list[list[tuple[str, str] | None]],
    series: Sequence[Series],
    title: str,
    x_label: str,
    x_span: tuple[float, float],
    y_span: tuple[float, float],
) -> Text:
    height, width = len(grid), len(grid[0])
    y_lo, y_hi = y_span
    labels = {height - 1: _tick(y_hi), (height - 1) // 2: _tick(y_lo / 2 + y_hi / 2), 0: _tick(y_lo)}
    pad = max(len(label) for label in labels.values())
    out = Text()
    if title:
        out.append(title + "\n", style="bold")
    for row in range(height - 1, -1, -1):
        out.append(f"{labels[row]:>{pad}} ┤" if row in labels else f"{'':>{pad}} │", style="dim")
        for cell in grid[row]:
            out.append(" ") if cell is None else out.append(cell[0], style=cell[1])
        out.append("\n")
    out.append(f"{'':>{pad}} └{'─' * width}\n", style="dim")
    left, right = _tick(x_span[0]), _tick(x_span[1])
    room = width - len(left) - len(right)
    middle = x_label.center(room) if len(x_label) + 2 <= room else " " * max(room, 1)
    out.append(f"{'':>{pad}}  {left}{middle}{right}\n", style="dim")
    out.append(f"{'':>{pad}}  ")
    for i, s in enumerate(series):
        out.append("  " if i else "")
        out.append(s.marker, style=s.style)
        out.append(f" {s.label}")
    return out
