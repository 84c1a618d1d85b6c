"""Progress of a training run on rank 0: a live bar on a terminal, one line per evaluation in logs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fedgossip.report import console

__all__ = ["training_progress"]


@contextmanager
def training_progress(enabled: bool = True) -> Iterator[Callable]:
    """Yield the ``on_round(info)`` callback the training loop calls on rank 0."""
    if not enabled:
        yield lambda info: None
        return
    if not console.is_terminal():
        yield _plain_line
        return
    # rich on rank 0 only: every rank enters here, and the others never draw.
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.fields[unit]}"),
        MofNCompleteColumn(),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console.stdout, transient=True) as bar:
        task = bar.add_task("training", total=None, status="", unit="round")

        def update(info) -> None:
            status = _status(info) if info.mean_accuracy is not None else bar.tasks[0].fields["status"]
            # an --async run shows an evaluation once it is reduced, after later interactions began
            done = max(info.round, bar.tasks[0].completed)
            bar.update(task, completed=done, total=info.rounds, status=status, unit=info.unit)

        yield update


def _status(info) -> str:
    accuracy = f"acc {info.mean_accuracy:.1%} · avg model {info.avg_model_accuracy:.1%}"
    return f"{accuracy} · {info.mb_sent:,.1f} MB sent"


def _plain_line(info) -> None:
    if info.mean_accuracy is not None:
        console.stdout.print(f"{info.unit} {info.round}/{info.rounds}: {_status(info)}")
