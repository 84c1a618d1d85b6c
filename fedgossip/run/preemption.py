"""SIGTERM as a request to stop at the next safe point, with a checkpoint, instead of dying mid-round.

Slurm (and most schedulers) announce a preemption with SIGTERM, then SIGKILL after
a grace period. A rank that merely died would lose everything since its last
checkpoint, so the handler only raises a flag; the round loop asks every rank at
each round boundary (one tiny Allreduce, so a signal that reached one rank stops
them all at the same round), writes a checkpoint and ends with status
``preempted``. Ctrl-C (SIGINT) still interrupts at once.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from mpi4py import MPI

__all__ = ["Preemption", "preempt_on_sigterm"]


class Preemption:
    """Whether this rank was asked to stop, and the collective check of every rank's answer."""

    def __init__(self) -> None:
        self.requested = False
        self.stopped_at: int | None = None  # the round (interaction) the run stopped after, on every rank

    def request(self, _signum: int | None = None, _frame=None) -> None:
        """Note the request; a second one interrupts at once (a job wedged in a collective still stops)."""
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def agreed(self, comm: MPI.Intracomm) -> bool:
        """Return True on every rank when any rank was asked to stop (call it on every rank alike)."""
        flag = np.array([1 if self.requested else 0], dtype=np.int8)
        comm.Allreduce(MPI.IN_PLACE, flag, op=MPI.MAX)
        return bool(flag[0])


@contextmanager
def preempt_on_sigterm(preemption: Preemption) -> Iterator[Preemption]:
    """Turn SIGTERM into ``preemption.requested`` inside the block; the previous handler comes back after."""
    previous = signal.signal(signal.SIGTERM, preemption.request)
    try:
        yield preemption
    finally:
        signal.signal(signal.SIGTERM, previous)
