"""Option types and helpers shared by several commands."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

import click

__all__ = ["NODES", "interrupt_on_sigterm"]

NODES = click.IntRange(min=1)


@contextmanager
def interrupt_on_sigterm(signum: int = signal.SIGTERM) -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt inside the block.

    Python's default SIGTERM ends the process without running ``finally``
    blocks; raising instead lets atomic writers delete their temporary files,
    so a killed ``partition create`` (Slurm preemption, ``timeout``) leaves nothing.
    """

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signum, interrupt)
    try:
        yield
    finally:
        signal.signal(signum, previous)
