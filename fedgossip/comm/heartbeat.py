"""Notice a job that stopped progressing (a frozen, hung or stopped rank) and say which ranks did not arrive.

MPICH without ULFM has no failure detection: a rank stopped by SIGSTOP, or stuck
in a system call, leaves every other rank waiting in its next exchange forever.
So each rank runs a :class:`Heartbeat`: a thread that, every fraction of a second,
sends a small int64 buffer ``[step, done]`` to rank 0 on a communicator of its
own (a ``Dup``, so nothing it sends can match the training's messages), and rank 0
sends one back to each rank. The training thread only tells it the step it began
(:meth:`Heartbeat.progress`); the thread never waits on a peer (``Isend`` and
``Iprobe``), so it goes on while the training waits inside MPI. That needs
``MPI_THREAD_MULTIPLE``, which mpi4py asks for by default.

Rank 0 declares a stall when no rank began a new step for ``timeout`` seconds.
The ranks that did not arrive are those it has not heard from for a while (a
stopped process) or, when every rank still answers, those behind the others.
A rank other than 0 declares one when rank 0 fell silent for ``timeout`` seconds
while its own training stood still. Either hands the message to ``on_stall``,
from the thread, which is expected to record it and end the job (``Abort``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
from mpi4py import MPI

from fedgossip.comm.ulfm import abandon, is_rank_lost

__all__ = ["Heartbeat"]

_BEAT = 7  # the one tag of the heartbeat communicator


class Heartbeat:
    """One rank's heartbeat thread; :meth:`start` and :meth:`stop` are collective."""

    def __init__(
        self, comm: MPI.Intracomm, timeout: float, on_stall: Callable[[str, int], None], unit: str = "round"
    ):
        self.timeout = timeout
        self.unit = unit  # what a step is, in messages: a round, or an interaction of an --async run
        self.on_stall = on_stall  # (message, step under way on this rank), called once, from the thread
        self.period = min(max(timeout / 10, 0.05), 1.0)  # how often a beat goes out
        # silence longer than this is a rank not running (a beat is due every period)
        self.silence = min(timeout / 2, 10 * self.period)
        self._comm = comm.Dup()
        self._rank, self._size = self._comm.Get_rank(), self._comm.Get_size()
        self._step = 0  # written by the training thread, read by the heartbeat's
        self._done = False
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fedgossip-heartbeat", daemon=True)
        self._sending: dict[int, tuple[MPI.Request, np.ndarray]] = {}  # a beat in flight per peer
        now = time.monotonic()
        self._moved = now  # when this rank last began a step
        # rank 0: by rank, when it was last heard from, when its step last moved, and that step
        self._heard = np.full(self._size, now)
        self._moved_at = np.full(self._size, now)
        self._steps = np.zeros(self._size, dtype=np.int64)
        self._finished = np.zeros(self._size, dtype=bool)

    def start(self) -> None:
        self._thread.start()

    @property
    def comm(self) -> MPI.Intracomm:
        """Return its own communicator (revoked with the others when a rank is lost)."""
        return self._comm

    def progress(self, step: int) -> None:
        """Say that this rank began ``step`` (a round, or an interaction of an --async run)."""
        self._step = step
        self._moved = time.monotonic()

    def finish(self) -> None:
        """Say that this rank's schedule is over: waiting for the others from now on is no stall."""
        self._done = True
        self._moved = time.monotonic()

    def stop(self) -> None:
        """Stop the thread on every rank (collective) and free the communicator."""
        self.finish()
        request = self._comm.Ibarrier()  # the beats go on until every rank got here
        while not request.Test():
            time.sleep(self.period / 10)
        self._stopping.set()
        self._thread.join()
        self._comm.Barrier()  # no thread sends any more
        self._drain()
        for request, _ in self._sending.values():
            request.Wait()  # small buffers: sent eagerly, complete at once
        self._comm.Free()

    def abandon(self) -> None:
        """Stop the thread on this rank alone (the run failed, or lost a rank): no collective."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5 * self.period)
        abandon(self._sending)  # beats to a dead peer may still be in flight

    def _run(self) -> None:
        try:
            self._beat_until_stopped()
        except MPI.Exception as exc:
            # A peer died or its communicator was revoked (--on-failure continue, under ULFM): the
            # training thread recovers and starts a new heartbeat; this one has nothing left to do.
            if not is_rank_lost(exc):
                raise

    def _beat_until_stopped(self) -> None:
        while not self._stopping.wait(self.period):
            self._drain()
            now = time.monotonic()
            if self._rank == 0:
                self._heard[0], self._steps[0], self._finished[0] = now, self._step, self._done
                self._moved_at[0] = max(self._moved_at[0], self._moved)
                for peer in range(1, self._size):
                    self._beat(peer)
                message = self._stalled(now)
            else:
                self._beat(0)
                silent = now - self._heard[0]
                still = now - self._moved
                message = None
                if silent > self.timeout and still > self.timeout and not self._done:
                    quiet = f"not heard from for {silent:.0f} s"
                    message = f"{self._headline('')}: rank 0 did not arrive ({quiet})"
            if message is not None:
                self._stopping.set()
                self.on_stall(message, self._step)
                return

    def _beat(self, peer: int) -> None:
        """Send ``[step, done]`` to ``peer`` unless the previous beat to it is still in flight."""
        if peer in self._sending and not self._sending[peer][0].Test():
            return  # a stopped peer does not take its beats: send no more
        buffer = np.array([self._step, int(self._done)], dtype=np.int64)
        self._sending[peer] = (self._comm.Isend(buffer, dest=peer, tag=_BEAT), buffer)

    def _drain(self) -> None:
        """Take every beat that has arrived; rank 0 notes each rank's step, and when it last moved."""
        status = MPI.Status()
        buffer = np.empty(2, dtype=np.int64)
        while self._comm.Iprobe(source=MPI.ANY_SOURCE, tag=_BEAT, status=status):
            source = status.Get_source()
            if status.Get_count(MPI.INT64_T) != 2:
                self._comm.Recv(bytearray(status.Get_count(MPI.BYTE)), source=source, tag=_BEAT)
                continue  # not a beat of ours: taken off the wire and ignored
            self._comm.Recv(buffer, source=source, tag=_BEAT)
            now = time.monotonic()
            self._heard[source] = now
            step, done = int(buffer[0]), bool(buffer[1])
            if step != self._steps[source] or done != self._finished[source]:
                self._steps[source], self._finished[source] = step, done
                self._moved_at[source] = now

    def _stalled(self, now: float) -> str | None:
        """Return rank 0's stall message, or None while some rank moved within the timeout."""
        if now - self._moved_at.max() <= self.timeout or self._finished.all():
            return None
        silent = [r for r in range(self._size) if now - self._heard[r] > self.silence]
        if silent:
            details = [
                f"not heard from for {now - self._heard[r]:.0f} s, last in {self.unit} {self._steps[r]}"
                for r in silent
            ]
            if len(silent) > 1:
                details = [f"rank {r}: {detail}" for r, detail in zip(silent, details, strict=True)]
            why = f"{_ranks(silent)} did not arrive ({'; '.join(details)})"
        else:  # every rank answers, none moves: those behind hold the others up
            waiting = [r for r in range(self._size) if not self._finished[r]]
            lowest = min(self._steps[r] for r in waiting)
            behind = [r for r in waiting if self._steps[r] == lowest]
            why = f"{_ranks(behind)} did not arrive (stuck in {self.unit} {lowest})"
        return f"{self._headline(' on any rank')}: {why}"

    def _headline(self, where: str) -> str:
        return f"no {self.unit} completed{where} for {self.timeout:g} s (--stall-timeout)"


def _ranks(ranks: list[int]) -> str:
    return f"rank {ranks[0]}" if len(ranks) == 1 else "ranks " + ", ".join(map(str, ranks))
