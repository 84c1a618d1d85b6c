"""The tables of ``fedgossip bench scale``: the placements of the default job, then the device counts."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fedgossip.report.figures import MISSING

__all__ = ["render_scale", "job_line"]


# Progress goes to stderr so that stdout holds only the tables (and can be piped or diffed).
_stderr = Console(stderr=True, highlight=False)


def job_line(name: str) -> None:
    """Say which job starts (each takes seconds to minutes)."""
    _stderr.print(escape(f"running {name}"))


def render_scale(result: dict[str, Any], console: Console) -> None:
    """Print the two tables of ``bench_scale``: the placements of the default job, then the device counts."""
    placement, devices = result["placement"], result["devices"]
    table = _table("ranks", "wall", "training", "memory", "× faster", "× less mem")
    for row in placement["rows"]:
        table.add_row(
            str(row["ranks"]),
            f"{row['wall_s']:.1f} s",
            f"{row['training_s']:.1f} s",
            f"{row['peak_rss_mb_total']:,.0f} MB",
            f"{row['speedup']:.1f}",
            f"{row['memory_ratio']:.1f}",
            _verdict(row),
        )
    console.print(table)
    console.print(
        f"[dim]the default digits job of {placement['nodes']} nodes, {placement['rounds']} rounds; wall: the "
        "whole job, start-up included; memory: peak resident, all ranks together[/]"
    )
    table = _table("model", "nodes", "ranks", "per round", "per step", "× alone")
    for row in devices["rows"]:
        ratio = row.get("step_cost_ratio")
        table.add_row(
            escape(row["model"]),
            f"{row['nodes']:,}",
            str(row["ranks"]),
            f"{row['seconds_per_round']:.2f} s",
            f"{1e6 * row['process_s_per_device_step']:,.0f} µs",
            MISSING if ratio is None else f"{ratio:.3f}",
            _verdict(row),
        )
    console.print(table)
    console.print(
        f"[dim]synthetic(1, 1), one device per node (natural), ≤ {devices['max_samples']} samples each; "
        f"{devices['rounds']} rounds of {devices['local_steps']} local steps; per step: process time per "
        "device-step; × alone: against one node per process (the rows without a ratio)[/]"
    )


def _table(*headers: str) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold", pad_edge=False)
    table.add_column(headers[0], no_wrap=True)
    for header in (*headers[1:], "targets"):
        table.add_column(header, justify="right", no_wrap=True)
    return table


def _verdict(row: dict[str, Any]) -> str:
    targets = row.get("targets") or {}
    return " ".join("[green]✓[/]" if met else "[red]✗[/]" for met in targets.values()) or MISSING
