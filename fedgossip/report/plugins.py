"""Draw a plugin family: each plugin with its parameters and defaults."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["render_plugins"]


def render_plugins(title: str, rows: list[dict[str, Any]], console: Console) -> None:
    """Print one table row per plugin (rows from ``Registry.describe()``)."""
    table = Table(title=title, title_justify="left", header_style="bold", show_lines=True)
    table.add_column("name", style="cyan", no_wrap=True)
    table.add_column("parameters (default)")
    table.add_column("what it is")
    for row in rows:
        params = "\n".join(_param(p) for p in row["params"]) or "[dim]none[/]"
        summary = escape(row["summary"])
        if row["provider"] != "fedgossip":
            summary += f"\n[dim]from {escape(row['provider'])}[/]"
        table.add_row(row["name"], params, summary)
    console.print(table)


def _param(param: dict[str, Any]) -> str:
    value = "[red]required[/]" if param["required"] else escape(_default_text(param["default"]))
    return f"{escape(param['name'])} ({value})"


def _default_text(default: Any) -> str:
    if isinstance(default, bool):
        return "true" if default else "false"
    return '""' if default == "" else str(default)
