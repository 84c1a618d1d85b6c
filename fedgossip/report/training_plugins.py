"""Draw what a run's training-time plugins did: each plugin's spec and its values at the end."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from fedgossip.report.figures import MISSING, count, number, size

__all__ = ["plugins_table"]

# How a few well-known values read best; anything else is printed as a plain number.
_PERCENT = {"hidden_fraction"}
_BYTES = {"data_bytes_sent", "data_bytes_received"}


def plugins_table(plugins: list[dict[str, Any]], communication: dict[str, Any]) -> Table:
    """Return the plugins section of a run's summary (``summary["plugins"]``)."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for plugin in plugins:
        table.add_row(escape(f"{plugin['kind']}"), escape(str(plugin["spec"])))
        for name, values in (plugin.get("final") or {}).items():
            table.add_row(f"  {name.replace('_', ' ')}", _values(name, values))
        if plugin["kind"] == "share-data":
            sent = communication.get("data_bytes_sent_total")
            table.add_row(
                "  data sent", f"{size(sent)} in total (raw samples, quantized; apart from model traffic)"
            )
    processed = communication.get("samples_processed_total")
    table.add_row("samples processed", f"{count(processed)} in total over ranks" if processed else MISSING)
    return table


def _values(name: str, values: dict[str, Any]) -> str:
    shown = [_one(name, values.get(key)) for key in ("mean", "min", "max")]
    return f"{shown[0]} mean · {shown[1]} min · {shown[2]} max"


def _one(name: str, value: Any) -> str:
    if value is None:
        return MISSING
    if name in _PERCENT:
        return f"{value:.1%}"
    if name in _BYTES:
        return size(value)
    return number(value)
