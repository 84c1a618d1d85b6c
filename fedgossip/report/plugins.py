"""Draw plugin families: each plugin with its parameters and defaults, and the broken entries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["render_plugins", "render_families"]


def render_plugins(
    title: str, rows: list[dict[str, Any]], console: Console, problems: Mapping[str, str] | None = None
) -> None:
    """Print one table row per plugin (rows from ``Registry.describe()``).

    ``problems`` (from ``Registry.problems()``) adds a red row for each name
    that cannot be used, with the message that says why and what to do.
    """
    problems = problems or {}
    if not rows and not problems:
        console.print(f"{escape(title)}: [dim]none installed[/]")
        return
    table = Table(title=escape(title), title_justify="left", header_style="bold", show_lines=True)
    table.add_column("name", style="cyan", no_wrap=True)
    table.add_column("parameters (default)")
    table.add_column("what it is")
    for row in rows:
        params = "\n".join(_param(p) for p in row["params"]) or "[dim]none[/]"
        summary = escape(row["summary"])
        if row["provider"] != "fedgossip":
            summary += f"\n[dim]from {escape(row['provider'])}[/]"
        table.add_row(row["name"], params, summary)
    for name, message in problems.items():
        table.add_row(f"[red]{escape(name)}[/]", "[red]unusable[/]", f"[red]{escape(message)}[/]")
    console.print(table)


def render_families(families: Mapping[str, Mapping[str, Any]], console: Console) -> None:
    """Print one table per family; ``families`` maps a family to its ``plugins`` and ``problems``."""
    for index, (family, listing) in enumerate(families.items()):
        if index:
            console.print()
        title = f"{family} (entry points: {listing['group']})"
        render_plugins(title, listing["plugins"], console, listing["problems"])


def _param(param: dict[str, Any]) -> str:
    value = "[red]required[/]" if param["required"] else escape(_default_text(param["default"]))
    return f"{escape(param['name'])} ({value})"


def _default_text(default: Any) -> str:
    if isinstance(default, bool):
        return "true" if default else "false"
    return '""' if default == "" else str(default)
