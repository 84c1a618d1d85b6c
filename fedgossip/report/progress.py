"""Progress display for long work: a rich bar on a terminal, sparse plain lines in logs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from fedgossip.report.console import is_terminal, stdout

__all__ = ["StageProgress", "stage_progress", "byte_progress"]

_PLAIN_STEPS = 10  # plain mode prints at most this many lines per stage, so Slurm logs stay short
_PLAIN_MIN_ITEMS = 100  # shorter stages print only their end


class StageProgress:
    """Callbacks the library calls: ``start(stage, total)`` then ``advance()`` per item."""

    def __init__(self, bar: Progress | None):
        self._bar = bar
        self._task = None
        self._stage = ""
        self._total = 0
        self._done = 0

    def start(self, stage: str, total: int) -> None:
        self._stage, self._total, self._done = stage, total, 0
        if self._bar is not None:
            if self._task is not None:
                self._bar.remove_task(self._task)
            self._task = self._bar.add_task(stage, total=total)

    def advance(self, *_: object) -> None:
        self._done += 1
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task)
            return
        every = self._total // _PLAIN_STEPS if self._total >= _PLAIN_MIN_ITEMS else self._total
        if self._done % max(every, 1) == 0 or self._done == self._total:
            stdout.print(f"{self._stage}: {self._done}/{self._total}")


@contextmanager
def stage_progress(enabled: bool = True) -> Iterator[StageProgress]:
    """Yield a :class:`StageProgress`; draw a bar only when stdout is a terminal."""
    if not enabled:  # e.g. --json output, which must stay machine-readable
        yield _Silent()
        return
    if not is_terminal():
        yield StageProgress(None)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=stdout, transient=True) as bar:
        yield StageProgress(bar)


class _Silent(StageProgress):
    def __init__(self) -> None:
        super().__init__(None)

    def start(self, stage: str, total: int) -> None:
        pass

    def advance(self, *_: object) -> None:
        pass


@contextmanager
def byte_progress(description: str) -> Iterator[Callable[[int, int | None], None]]:
    """Yield a ``(bytes_done, bytes_total)`` callback drawing a transfer bar on a terminal."""
    if not is_terminal():
        yield lambda done, total: None
        return
    columns = (TextColumn(description), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=stdout, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update
