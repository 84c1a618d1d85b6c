"""When a run evaluates, writes checkpoints and may stop for a preemption: one rule for both schedules.

Steps are rounds in a synchronous run and interactions (each rank's own offers)
with ``--async``; the last step is ``--rounds`` either way.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Cadence"]


@dataclass(frozen=True)
class Cadence:
    """Which steps end with an evaluation or a checkpoint."""

    last: int  # --rounds
    eval_every: int  # --eval-every
    checkpoint_every: int  # --checkpoint-every; 0: only when preempted

    def evaluates(self, step: int) -> bool:
        """Every ``eval_every`` steps, and always after the last one."""
        return step % self.eval_every == 0 or step == self.last

    def checkpoints(self, step: int) -> bool:
        """Every ``checkpoint_every`` steps, but not after the last: a completed run needs none."""
        return bool(self.checkpoint_every) and step % self.checkpoint_every == 0 and step < self.last
