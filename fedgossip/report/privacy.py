"""Draw what a private run spent: the mechanism, ε over nodes, δ, and the budget."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from fedgossip.report.figures import MISSING

__all__ = ["privacy_table"]

_LEVELS = {"sample": "sample-level (one training sample)", "node": "node-level (a node's whole shard)"}


def privacy_table(privacy: dict[str, Any], ranks: int | None) -> Table:
    """Return the privacy section of a run's summary (``summary["privacy"]``)."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("privacy", escape(str(privacy["mechanism"])))
    level = _LEVELS.get(privacy.get("level") or "", MISSING)
    table.add_row(
        "  protects",
        f"{level} · clip C {_plain(privacy.get('clip'))} · noise σ {_plain(privacy.get('noise'))}",
    )
    table.add_row(
        "  ε spent",
        f"{_epsilon(privacy['epsilon_max'])} max · {_epsilon(privacy['epsilon_mean'])} mean over nodes "
        f"at δ {_delta(privacy)}",
    )
    table.add_row("  budget", _budget(privacy, ranks))
    if privacy["deterministic"]:
        noise = "seeded from --seed (--deterministic: repeatable, not secret)"
    else:
        noise = "seeded by the OS"
    table.add_row("  noise", noise)
    return table


def _epsilon(value: float | None) -> str:
    if value is None:
        return MISSING
    return "∞ (no noise)" if value == float("inf") else f"{value:.3g}"


def _delta(privacy: dict[str, Any]) -> str:
    low, high = privacy.get("delta_min"), privacy.get("delta_max")
    if low is None:
        return MISSING
    return f"{low:.3g}" if low == high else f"{low:.3g} – {high:.3g} (1/samples on the smallest shards)"


def _budget(privacy: dict[str, Any], ranks: int | None) -> str:
    target = privacy.get("target_epsilon")
    if target is None:
        return "none (--dp-target-epsilon)"
    text = f"target ε {target:g}"
    stopped = privacy.get("stopped_nodes") or 0
    if privacy.get("budget_round") is not None:
        return text + f" · [yellow]training stopped after round {privacy['budget_round']}[/]"
    if stopped:
        return text + f" · [yellow]{stopped} of {ranks or MISSING} nodes stopped training and kept serving[/]"
    return text + " · not reached"


def _plain(value: float | None) -> str:
    return MISSING if value is None else f"{value:g}"
