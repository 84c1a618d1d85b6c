"""Draw ``bench byzantine``: per setting, attacks down the side, aggregators across, honest average model."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fedgossip.report.figures import MISSING

__all__ = ["render_byzantine"]


def render_byzantine(result: dict[str, Any], console: Console) -> None:
    """Print the honest average model's accuracy and its points against the attack-free run."""
    for setting in result["settings"]:
        rows = [row for row in result["rows"] if row["setting"] == setting]
        rules = list(dict.fromkeys(row["rule"] for row in rows))
        table = Table(
            title=setting, box=box.SIMPLE_HEAD, show_edge=False, header_style="bold", pad_edge=False
        )
        table.add_column("attack", no_wrap=True)
        for rule in rules:
            spec = next(row["aggregator"] for row in rows if row["rule"] == rule)
            table.add_column(escape(spec), justify="right", no_wrap=True)
        for attack in dict.fromkeys(row["attack"] for row in rows):
            cells = {row["rule"]: row for row in rows if row["attack"] == attack}
            table.add_row(escape(attack), *(_cell(cells.get(rule)) for rule in rules))
        console.print(table)
    console.print(
        f"[dim]{escape(result['data'])}, attackers {escape(result['attackers'])} (fedavg: those clients), "
        f"{result['rounds']} rounds, {escape(result['training'])}, seed {result['seed']}; honest average "
        "model's accuracy (%) and points against the attack-free run with mean[/]"
    )
    for goal in result["goals"]:
        mark = "[green]✓[/]" if goal["met"] else "[red]✗[/]"
        clip, mean = goal["clip_worst"], goal["mean_worst"]
        console.print(
            f"{mark} {escape(goal['setting'])}: clip's worst {escape(clip['attack'])} {clip['points']:+.1f}, "
            f"mean's worst {escape(mean['attack'])} {mean['points']:+.1f}"
        )


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return MISSING
    return f"{100 * row['avg_model_accuracy']:.1f} {row['points_vs_attack_free']:+.1f}"
