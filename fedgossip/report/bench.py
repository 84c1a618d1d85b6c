"""Draw benchmark results (codec throughput, accuracy against bytes) and what is measured meanwhile.

The table fits an 80-column terminal: sizes are written short (``10M``) and a
long compressor spec folds onto a second line rather than widening the table.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fedgossip.report.figures import MISSING, ratio
from fedgossip.report.figures import size as byte_size

__all__ = [
    "render_codecs",
    "codec_progress",
    "render_gossip",
    "render_comp_ams",
    "render_async",
    "scenario_line",
]

# Progress goes to stderr so that stdout holds only the table (and can be piped or diffed).
_stderr = Console(stderr=True, highlight=False)


def render_codecs(result: dict[str, Any], console: Console) -> None:
    """Print one table of every row of ``bench_codecs``'s result, the copy reference first per size."""
    console.print(_table(result))
    threads = "1 thread" if result.get("single_threaded") else "[red]more than one thread[/]"
    machine = result.get("machine", {})
    cpu = escape(machine.get("cpu") or machine.get("processor") or "unknown CPU")
    console.print(
        f"[dim]best of {result['repeats']} · {threads} · {cpu} · numba {machine.get('numba') or MISSING}; "
        "targets are meant at the largest size, where the copy is memory-bound[/]"
    )


def _table(result: dict[str, Any]) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD, show_edge=False, header_style="bold", pad_edge=False, collapse_padding=True
    )
    table.add_column("compressor", overflow="fold", ratio=1, min_width=12)
    # Two-line headers keep the number columns as narrow as their numbers, leaving room for specs.
    for header in ("size", "GB/s", "×\ncopy", "bytes\nratio", "rel.\nerror", "target\nok"):
        table.add_column(header, justify="right", no_wrap=True)
    for index, copy in enumerate(result["copy"]):
        if index:
            table.add_section()
        size = copy["size"]
        table.add_row("[dim]copy (np.copyto)[/]", _count(size), f"{copy['gbps']:.2f}", "1.00", "", "", "")
        for row in (row for row in result["rows"] if row["size"] == size):
            table.add_row(
                escape(row["compressor"]),
                _count(size),
                f"{row['gbps']:.2f}",
                f"{row['ratio_to_copy']:.2f}",
                ratio(row["compression_ratio"]),
                _error(row["rel_error"]),
                _target(row),
            )
    return table


def _count(size: int) -> str:
    """Write a vector length short: ``1M``, ``10M``, ``4.1k``; exact below a thousand."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if size >= scale:
            return f"{size / scale:.3g}{suffix}"
    return str(size)


def _error(value: float) -> str:
    return "0" if value == 0 else f"{value:.2e}"


def _target(row: dict[str, Any]) -> str:
    target = row.get("target_ratio_to_copy")
    if target is None:
        return MISSING
    return f"[green]✓ ≥{target:.2f}[/]" if row["target_met"] else f"[red]✗ <{target:.2f}[/]"


@contextmanager
def codec_progress(total: int) -> Iterator[Callable[[str], None]]:
    """Yield a callback told what is measured next: a bar on a terminal, one line each in a log."""
    if not sys.stderr.isatty():
        done = 0

        def line(description: str) -> None:
            nonlocal done
            done += 1
            _stderr.print(escape(f"[{done}/{total}] {description}"), soft_wrap=True)

        yield line
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=_stderr, transient=True) as bar:
        task = bar.add_task("codecs", total=total)
        started = False

        def advance(description: str) -> None:
            # Told before each measurement: the previous one has just finished.
            nonlocal started
            bar.update(task, description=escape(description), advance=1 if started else 0)
            started = True

        yield advance


def scenario_line(scenario: Any, ranks: int | None = None) -> None:
    """Say which training job of an accuracy-against-bytes benchmark starts (each takes minutes)."""
    where = "" if ranks is None else f" on {ranks} ranks"
    options = "".join(f" {option}" for option in scenario.options)
    command = f"{scenario.algorithm} --compressor {scenario.compressor}{options}"
    _stderr.print(escape(f"running {scenario.name}{where}: {command}"))


def render_gossip(result: dict[str, Any], console: Console) -> None:
    """Print the accuracy-against-bytes table of ``bench_gossip``, fp32 D-PSGD first."""
    table = Table(
        box=box.SIMPLE_HEAD, show_edge=False, header_style="bold", pad_edge=False, collapse_padding=True
    )
    table.add_column("scenario", no_wrap=True)
    for header in (
        "avg-model\naccuracy",
        "Δ vs fp32\n(points)",
        "MB sent\n(total)",
        "fewer\nbytes",
        "targets",
    ):
        table.add_column(header, justify="right")
    for row in result["rows"]:
        table.add_row(
            escape(row["scenario"]),
            f"{100 * row['avg_model_accuracy']:.2f}%",
            _gain(row),
            f"{row['bytes_sent_total'] / 1e6:.1f}",
            ratio(row["bytes_ratio_to_fp32"]),
            _verdict(row),
        )
    console.print(table)
    console.print(
        f"[dim]{escape(result['data'])}, {result['topology']}, {result['rounds']} rounds, "
        f"seed {result['seed']}; "
        "targets: 8-bit within 0.5 points and ≥ 3.9× fewer bytes, 4-bit within 1 point and ≥ 7×[/]"
    )


def render_comp_ams(result: dict[str, Any], console: Console) -> None:
    """Print the table of ``bench_comp_ams``, one section per rank count, its reference first."""
    table = Table(
        box=box.SIMPLE_HEAD, show_edge=False, header_style="bold", pad_edge=False, collapse_padding=True
    )
    table.add_column("nodes", justify="right", no_wrap=True)
    table.add_column("scenario", ratio=1, min_width=10)  # wraps between words, not in specs
    table.add_column("compressor", no_wrap=True)
    for header in ("accuracy", "Δ\npoints", "bytes/\nworker", "fewer\nbytes", "targets"):
        table.add_column(header, justify="right", no_wrap=True)
    shown = None
    for row in result["rows"]:
        if shown is not None and row["ranks"] != shown:
            table.add_section()
        table.add_row(
            str(row["ranks"]) if row["ranks"] != shown else "",
            escape(row["scenario"]),
            escape(row["compressor"]),
            f"{100 * row['avg_model_accuracy']:.2f}%",
            _gain(row),
            byte_size(row["bytes_per_worker"]),
            ratio(row["bytes_ratio_to_fp32"]),
            _verdict(row),
        )
        shown = row["ranks"]
    console.print(table)
    targets = "; ".join(
        f"{row['scenario']}: {', '.join(row['targets'])}"
        for row in result["rows"]
        if row["ranks"] == result["ranks"][0] and row["targets"]
    )
    console.print(
        f"[dim]{escape(result['data'])}, {result['steps']} steps (one per round), seed {result['seed']}; "
        f"accuracy of the average model; Δ and fewer bytes against {escape(result['reference'])} "
        f"on as many nodes; targets: {escape(targets) or MISSING}[/]"
    )


def render_async(result: dict[str, Any], console: Console) -> None:
    """Print the table of ``bench_async``: final accuracy, wall time and time to sync's accuracy."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold", pad_edge=False)
    table.add_column("scenario", no_wrap=True)
    for header in (
        "accuracy",
        "wall",
        f"time to\n{100 * result['target_accuracy']:.2f}%",
        "× sync\nwall",
        "targets",
    ):
        table.add_column(header, justify="right", no_wrap=True)
    for row in result["rows"]:
        reached, share = row["time_to_reference_accuracy_s"], row["time_ratio_to_reference"]
        table.add_row(
            escape(row["scenario"]),
            f"{100 * row['avg_model_accuracy']:.2f}%",
            f"{row['wall_s']:.1f} s",
            MISSING if reached is None else f"{reached:.1f} s",
            MISSING if share is None else f"{share:.2f}",
            _verdict(row),
        )
    console.print(table)
    console.print(
        f"[dim]{escape(result['data'])}, --slowdown {escape(result['slowdown'])}, {result['rounds']} rounds "
        f"(async: interactions per rank) of {result['local_steps']} local steps, seed {result['seed']}; "
        f"accuracy of the average model; time to the accuracy {escape(result['reference'])} ended with[/]"
    )


def _gain(row: dict[str, Any]) -> str:
    """Write the accuracy change against the reference in points, ``+0.00`` rather than ``-0.00``."""
    return f"{0.0 - row['accuracy_drop_points'] + 0.0:+.2f}"


def _verdict(row: dict[str, Any]) -> str:
    targets = row.get("targets") or {}
    return " ".join("[green]✓[/]" if met else "[red]✗[/]" for met in targets.values()) or MISSING
