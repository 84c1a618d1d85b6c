"""Format the figures of a run summary for the terminal; a missing figure prints as "–"."""

from __future__ import annotations

from typing import Any

__all__ = ["MISSING", "count", "number", "size", "seconds", "ratio", "curve_accuracy"]

MISSING = "–"
_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")


def number(value: float | None, digits: int = 4) -> str:
    """Return ``value`` with ``digits`` decimals, or in scientific notation when tiny or huge."""
    if value is None:
        return MISSING
    if value != 0 and not 10 ** -(digits - 1) <= abs(value) < 1e6:
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def count(value: float | None) -> str:
    """Return a count: an integer as one ("20", "1,234,567"), a fractional mean of counts with 2 decimals.

    Counts arrive as floats where they are means over ranks; "20.0000 interactions" reads as a
    measurement, not a count.
    """
    # Not a number (a damaged summary.json): shown as missing rather than a traceback.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return MISSING
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def size(nbytes: float | None) -> str:
    """Return a byte count in decimal units (1 MB = 10⁶ B), as network traffic is counted."""
    if nbytes is None:
        return MISSING
    value, unit = float(nbytes), 0
    while abs(value) >= 1000 and unit < len(_UNITS) - 1:
        value, unit = value / 1000, unit + 1
    return f"{value:.0f} {_UNITS[unit]}" if unit == 0 else f"{value:.3g} {_UNITS[unit]}"


def seconds(value: float | None) -> str:
    """Return a duration in seconds, with minutes or hours beside it when long."""
    if value is None:
        return MISSING
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{value:.0f} s ({value / 60:.1f} min)"
    return f"{value:.0f} s ({value / 3600:.1f} h)"


def ratio(value: float | None) -> str:
    """Return a compression ratio such as ``8.0×``."""
    return MISSING if value is None else f"{value:.3g}×"


def curve_accuracy(summary: dict[str, Any]) -> tuple[list | None, str]:
    """Return the accuracy curve to chart and what it measures.

    The average model's accuracy is the figure decentralized training is judged
    by; runs that did not evaluate it fall back to the mean over ranks.
    """
    curve = summary.get("curve") or {}
    average = curve.get("avg_model_accuracy")
    if average and any(v is not None for v in average):
        return average, "average model"
    return curve.get("test_accuracy_mean"), "mean over nodes"
