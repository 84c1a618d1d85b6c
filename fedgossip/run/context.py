"""What both schedules share during a run: nodes, network, evaluator, cadence, records and the clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpi4py import MPI

from fedgossip.comm.heartbeat import Heartbeat
from fedgossip.comm.network import NodeNetwork
from fedgossip.records import MetricsWriter
from fedgossip.records.guardian import Guardian
from fedgossip.run.cadence import Cadence
from fedgossip.run.checkpointing import write_checkpoint
from fedgossip.run.evaluator import Evaluator
from fedgossip.run.local_rounds import BatchedRounds
from fedgossip.run.node import Node
from fedgossip.run.plan import RunPlan
from fedgossip.run.preemption import Preemption
from fedgossip.run.progress import RoundInfo

__all__ = ["RunContext", "Outcome"]


@dataclass
class Outcome:
    """How a schedule ended: ``completed``, ``budget-exhausted`` or ``preempted``, and its details."""

    status: str = "completed"
    details: dict[str, Any] = field(default_factory=dict)  # run.json keys: budget, preempted_round
    stopped_at: int | None = None  # the step a preemption stopped the run after


@dataclass
class RunContext:
    """One rank's run, as the schedules drive it."""

    plan: RunPlan
    nodes: list[Node]  # the nodes this rank hosts, in node order
    network: NodeNetwork
    comm: MPI.Intracomm
    run_dir: Path
    writer: MetricsWriter | None  # rank 0 only
    evaluator: Evaluator
    cadence: Cadence
    preemption: Preemption | None = None
    on_round: Callable[[RoundInfo], None] | None = None
    batched: BatchedRounds | None = None  # trains co-hosted nodes as one computation; None: one by one
    step: int = 0  # the round (interaction) under way; the schedules move it on with begin()
    guardian: Guardian | None = None  # rank 0: told each step, to name it if the job is killed
    heartbeat: Heartbeat | None = None  # told each step: a job where no rank moves on fails (--stall-timeout)
    started: float = field(default_factory=time.perf_counter)
    # --on-failure continue: a fedgossip.run.recovery.Recovery, what survives a lost rank (which
    # builds on this module, hence untyped here); None: a lost rank ends the run
    recovery: Any = None

    def begin(self, step: int) -> None:
        """Start round (interaction) ``step``."""
        self.step = step
        if self.heartbeat is not None:
            self.heartbeat.progress(step)
        if self.guardian is not None:
            self.guardian.tell_step(step, "interaction" if self.plan.config.asynchronous else "round")

    @property
    def rank(self) -> int:
        return self.comm.Get_rank()

    def wall(self) -> float:
        """Return the seconds since training started (a resumed run goes on from its checkpoint's)."""
        return time.perf_counter() - self.started

    def info(self, step: int, shown: dict[str, float] | None = None) -> RoundInfo:
        unit = "interaction" if self.plan.config.asynchronous else "round"
        return RoundInfo(step, self.plan.config.rounds, run_dir=self.run_dir, unit=unit, **(shown or {}))

    def report(self, info: RoundInfo) -> None:
        """Hand one step to the progress display, on rank 0."""
        if self.on_round is not None and self.rank == 0:
            self.on_round(info)

    def preempted(self) -> bool:
        """Return on every rank whether any rank was asked to stop (all ranks call it alike)."""
        return self.preemption is not None and self.preemption.agreed(self.comm)

    def checkpoint(self, step: int, loop: dict[str, Any] | None = None, wall: float | None = None) -> None:
        """Write every rank's checkpoint after ``step`` (``wall``: the time it records; default now)."""
        wall = self.wall() if wall is None else wall
        write_checkpoint(self.nodes, self.comm, self.run_dir, step, self.writer, wall, loop)
