"""Draw one run's summary and the list of runs; everything fits an 80-column terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from fedgossip.report.chart import COLOURS, MARKERS, Series, line_chart
from fedgossip.report.edges import busiest_edges_table
from fedgossip.report.figures import MISSING, count, number, ratio, seconds, size
from fedgossip.report.privacy import privacy_table
from fedgossip.report.training_plugins import plugins_table

__all__ = ["render_summary", "render_runs", "status_markup"]

_CHART_WIDTH, _CHART_HEIGHT = 60, 10
_BAR_WIDTH = 40
_STATUS_STYLES = {
    "completed": "[green]✔ completed[/]",
    "running": "[yellow]… running[/]",
    "failed": "[red]✘ failed[/]",
    "budget-exhausted": "[yellow]■ budget-exhausted[/]",
    "preempted": "[yellow]■ preempted[/]",
}


def status_markup(status: str | None) -> str:
    """Return a run status with a symbol and colour, as rich markup."""
    return _STATUS_STYLES.get(status or "", escape(str(status or MISSING)))


def render_summary(summary: dict[str, Any], console: Console, path: Path | None = None) -> None:
    """Print a run's summary: header, final accuracy, traffic, time split and accuracy charts."""
    for section in (
        _header(summary, path),
        _final(summary),
        *([privacy_table(summary["privacy"], summary["ranks"])] if summary.get("privacy") else []),
        *([plugins_table(summary["plugins"], summary["communication"])] if summary.get("plugins") else []),
        _traffic(summary["communication"], summary.get("gossip")),
        *([edges] if (edges := busiest_edges_table(summary.get("traffic_edges") or [])) else []),
        _time(summary["time"]),
        *_charts(summary),
    ):
        console.print(section)
        console.print()


def _header(summary: dict[str, Any], path: Path | None) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    status = status_markup(summary["status"])
    if summary.get("failed_round") is not None:
        status += f" at round {summary['failed_round']}"
    if summary.get("error"):
        status += f": [red]{escape(str(summary['error']))}[/]"
    topology = summary["topology"]
    partition = summary["partition"]
    tv = partition.get("label_tv_distance_mean")
    heterogeneity = MISSING if tv is None else f"label TV distance {tv:.3f} (0 = IID, 1 = disjoint)"
    rows = [
        ("run", escape(str(summary.get("name") or MISSING))),
        ("status", status),
        ("algorithm", escape(str(summary["algorithm"] or MISSING))),
        ("compressor", _compressor(summary)),
        ("optimizer", _optimizer(summary.get("optimizer") or {})),
        ("mode", _mode(summary.get("mode") or {})),
        *_availability(summary.get("availability") or {}),
        *_lost(summary.get("lost") or []),
        (
            "topology",
            f"{escape(str(topology.get('spec') or MISSING))}, spectral gap "
            f"{number(topology.get('spectral_gap'))}",
        ),
        ("ranks", _placement(summary)),
        ("partition", escape(" · ".join(str(p) for p in (partition["path"], partition["scheme"]) if p))),
        ("heterogeneity", heterogeneity),
    ]
    faulty = summary.get("faulty") or {}
    if faulty.get("attackers") or faulty.get("robust", "mean") != "mean":
        rows.append(("faulty", _faulty(faulty)))
    if path is not None:
        rows.insert(1, ("directory", escape(str(path))))
    for key, value in rows:
        table.add_row(key, value or MISSING)
    return table


def _faulty(faulty: dict[str, Any]) -> str:
    """Say who attacked with what, and how nodes combined: the accuracy figures are the honest nodes'."""
    robust = f"aggregation {escape(str(faulty.get('robust') or 'mean'))}"
    attackers = faulty.get("attackers") or []
    if not attackers:
        return robust
    nodes = ", ".join(map(str, attackers))
    return (
        f"{escape(str(faulty.get('attack')))} by node{'s' if len(attackers) > 1 else ''} {nodes} "
        f"(left out of the accuracy figures), {robust}"
    )


def _final(summary: dict[str, Any]) -> Table:
    final = summary["final"]
    when = "none yet" if final["round"] is None else f"round {final['round']}"
    title = f"final evaluation ({when})"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, header_style="bold")
    table.add_column("metric")
    for column in ("mean", "min", "max"):
        table.add_column(f"{column} over nodes" if column == "mean" else column, justify="right")
    accuracy = final["test_accuracy"]
    table.add_row("test accuracy", *(number(accuracy[k]) for k in ("mean", "min", "max")))
    table.add_row("test loss", number(final["test_loss"]["mean"]), "", "")
    table.add_row("average model accuracy", number(final["avg_model_accuracy"]), "", "")
    table.add_row("consensus distance", number(final["consensus_distance"]), "", "")
    return table


def _availability(availability: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the availability row, for a run where nodes came and went (none for ``always``)."""
    spec = availability.get("spec", "always")
    if spec == "always":
        return []
    fraction = availability.get("mean_online_fraction")
    online = MISSING if fraction is None else f"{fraction:.1%} of node-rounds online"
    return [("availability", f"{escape(str(spec))}, {online}")]


def _lost(lost: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Return the "lost devices" row: per lost rank, its nodes, the round and time (none if none)."""
    by_rank: dict[int, list[dict[str, Any]]] = {}
    for entry in lost:
        by_rank.setdefault(int(entry["rank"]), []).append(entry)
    parts = []
    for rank, entries in sorted(by_rank.items()):
        nodes = ", ".join(str(entry["node"]) for entry in entries)
        first = entries[0]
        wall, recovery = float(first.get("wall_s", 0)), float(first.get("recovery_s", 0))
        parts.append(
            f"rank {rank} (node{'s' if len(entries) > 1 else ''} {nodes}) in round {first['round']}, "
            f"{wall:.1f} s in; went on after {recovery:.3f} s"
        )
    return [("lost devices", "; ".join(parts))] if parts else []


def _mode(mode: dict[str, Any]) -> str:
    parts = ["asynchronous" if mode.get("asynchronous") else "synchronous rounds"]
    for key in ("slowdown", "link"):
        if mode.get(key, "none") != "none":
            parts.append(f"{key} {mode[key]}")
    return escape(" · ".join(parts))


def _optimizer(optimizer: dict[str, Any]) -> str:
    if not optimizer.get("spec"):
        return MISSING  # a summary written before optimizers were recorded
    lr = optimizer.get("lr")
    parts = [optimizer["spec"], MISSING if lr is None else f"lr {lr:g}", optimizer.get("schedule") or MISSING]
    return escape(" · ".join(str(part) for part in parts))


def _placement(summary: dict[str, Any]) -> str:
    """Return "8" for a run of one node per rank, "1000 nodes on 4 ranks" otherwise."""
    ranks, nodes = summary["ranks"], summary.get("nodes")
    if ranks is None:
        return MISSING
    if nodes is None or nodes == ranks:
        return str(ranks)
    return f"{nodes} nodes on {ranks} {_plural(str(ranks), 'rank')}"


def _compressor(summary: dict[str, Any]) -> str:
    text = escape(str(summary["compressor"] or MISSING))
    gamma = summary.get("consensus_step")
    if gamma is not None:
        text += f" · CHOCO-gossip, γ = {gamma:.3g}"
    return text


def _traffic(communication: dict[str, Any], gossip: dict[str, Any] | None = None) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    table.add_row("traffic", "")
    mean, peak = communication["bytes_sent_per_rank_mean"], communication["bytes_sent_per_rank_max"]
    table.add_row("  sent per node", f"{size(mean)} mean · {size(peak)} max")
    table.add_row("  sent in total", size(communication["bytes_sent_total"]))
    table.add_row("  fp32 equivalent", f"{size(communication['fp32_equivalent_bytes'])} (as float32 vectors)")
    table.add_row("  compression", f"{ratio(communication['compression_ratio'])} (fp32 equivalent ÷ sent)")
    share = communication.get("bytes_within_share")
    if share:
        table.add_row(
            "  within processes",
            f"{size(communication['bytes_within_total'])} ({share:.0%} of sent) between co-hosted nodes",
        )
    if communication.get("data_bytes_sent_total"):
        table.add_row(
            "  shared data", f"{size(communication['data_bytes_sent_total'])} of samples (--share-data)"
        )
    if gossip:
        table.add_row("  interactions", f"{count(gossip['interactions_per_rank_mean'])} per rank (mean)")
        table.add_row("  offers served", f"{count(gossip['offers_served_per_rank_mean'])} per rank (mean)")
        table.add_row("  staleness", f"{number(gossip['staleness_steps_mean'])} local steps offer → reply")
        table.add_row("  idle", f"{seconds(gossip['idle_s_mean'])} waiting for replies or the end (mean)")
    return table


def _time(time: dict[str, Any]) -> Table:
    wall, compute, comm = time["wall_s"], time["compute_s"], time["comm_s"]
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    table.add_row("time", "[dim]compute and communication: mean over nodes[/]")
    table.add_row("  compute", _share(compute, wall))
    table.add_row("  communication", _share(comm, wall))
    if time.get("link_s"):
        table.add_row("  emulated link", f"{seconds(time['link_s'])} packets held for --link (mean)")
    table.add_row("  wall", seconds(wall))
    if wall and compute is not None and comm is not None:
        table.add_row("", _time_bar(compute / wall, comm / wall))
    return table


def _share(value: float | None, wall: float | None) -> str:
    if value is None or not wall:
        return seconds(value)
    return f"{seconds(value)} ({value / wall:.0%} of wall)"


def _time_bar(compute: float, comm: float) -> Text:
    filled = min(_BAR_WIDTH, round(compute * _BAR_WIDTH))
    talking = min(_BAR_WIDTH - filled, round(comm * _BAR_WIDTH))
    bar = Text()
    bar.append("█" * filled, style=COLOURS[0])
    bar.append("█" * talking, style=COLOURS[1])
    bar.append("·" * (_BAR_WIDTH - filled - talking), style="dim")
    bar.append("  compute", style=COLOURS[0])
    bar.append(" comm", style=COLOURS[1])
    bar.append(" other", style="dim")
    return bar


def _charts(summary: dict[str, Any]) -> list[Text]:
    curve = summary["curve"]
    series = [
        ("average model", curve["avg_model_accuracy"]),
        ("mean over nodes", curve["test_accuracy_mean"]),
    ]
    charts = []
    for x, x_label in ((curve["round"], "round"), (curve["mb_sent_total"], "MB sent, all nodes")):
        lines = [
            Series(label, x or [], y, marker=MARKERS[i], style=COLOURS[i])
            for i, (label, y) in enumerate(series)
            if y is not None
        ]
        title = f"test accuracy vs {x_label.split(',')[0]}"
        charts.append(
            line_chart(lines, width=_CHART_WIDTH, height=_CHART_HEIGHT, title=title, x_label=x_label)
        )
    return charts


def render_runs(rows: list[dict[str, Any]], directory: Path, console: Console) -> None:
    """Print two lines per run of ``directory``: its name and status, then its figures.

    A run name is what the next command needs (``fedgossip summary DIR/NAME``), so
    it gets a line of its own and is never cut, whatever the terminal width.
    """
    if not rows:
        console.print(f"no runs in {escape(str(directory))}; start one with `mpirun -n 8 fedgossip train`")
        return
    console.print(f"[bold]runs in {escape(str(directory))}[/] ({len(rows)})")
    for row in rows:
        status = "[red]✘ unreadable[/]" if row["note"] else status_markup(row["status"])
        console.print(f"[bold]{escape(row['name'])}[/]  {status}")
        if row["note"]:
            console.print(Text(f"  {row['note']}", style="red"))
            continue
        ranks = MISSING if row["ranks"] is None else str(row["ranks"])
        sent = None if row["mb_sent"] is None else row["mb_sent"] * 1e6
        console.print(
            f"  [dim]{escape(str(row['algorithm'] or MISSING)):<10} {ranks:>5} {_plural(ranks, 'rank')}  "
            f"avg model[/] {number(row['avg_model_accuracy'], 3):>5}  "
            f"[dim]mean[/] {number(row['test_accuracy_mean'], 3):>5}  "
            f"[dim]sent[/] {size(sent):>8}"
        )


def _plural(count: str, noun: str) -> str:
    return noun if count == "1" else noun + "s"
