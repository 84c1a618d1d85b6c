"""The learning rate of each of many nodes at each batched step, without stepping a schedule per node.

Every node has its own schedule (a ``LambdaLR``: constant or cosine over its own
total steps, from :func:`~fedgossip.local.optim.make_lr_schedule`). Calling
``schedule.step()`` for a thousand nodes after every batched step costs more than
the step. A ``LambdaLR`` has a closed form, ``base_lr · λ(last_epoch)``, which is
exactly what its ``step()`` computes; so the rates are read from it, and each
schedule is moved on once, at the end, by the steps its node took, to the very
state ``step()`` calls would have left. Any other schedule is stepped as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.optim.lr_scheduler import LambdaLR

from fedgossip.local.trainer import LocalTrainer

__all__ = ["StackedRates"]


class StackedRates:
    """Give the learning rate of every node at each step of one batched run, then settle their schedules."""

    def __init__(self, trainers: Sequence[LocalTrainer], device: torch.device):
        self.trainers = tuple(trainers)
        self.device = device
        self._closed = [_closed_form(trainer) for trainer in self.trainers]
        self._taken = [0] * len(self.trainers)  # steps taken in this run, per node

    def rates(self, nodes: Sequence[int]) -> torch.Tensor:
        """Return the rates of ``nodes`` for their next step (float64), as their optimizers would hold."""
        values = []
        for node in nodes:
            closed = self._closed[node]
            if closed is None:
                values.append(self.trainers[node].optimizer.param_groups[0]["lr"])
            else:
                schedule, base, rate_at = closed
                values.append(base * rate_at(schedule.last_epoch + self._taken[node]))
        return torch.tensor(values, dtype=torch.float64, device=self.device)

    def stepped(self, nodes: Sequence[int]) -> None:
        """Count one step of ``nodes``; a schedule without a closed form steps now."""
        for node in nodes:
            self._taken[node] += 1
            if self._closed[node] is None and self.trainers[node].schedule is not None:
                self.trainers[node].schedule.step()

    def settle(self) -> None:
        """Move every closed-form schedule on by its node's steps, as that many ``step()`` calls would."""
        for node, closed in enumerate(self._closed):
            taken, self._taken[node] = self._taken[node], 0
            if closed is None or not taken:
                continue
            schedule, base, rate_at = closed
            schedule._step_count += taken
            schedule.last_epoch += taken
            rate = base * rate_at(schedule.last_epoch)
            schedule.optimizer.param_groups[0]["lr"] = rate
            schedule._last_lr = [rate]


def _closed_form(trainer: LocalTrainer):
    """Return ``(schedule, base rate, λ)`` when the trainer's schedule is a plain one-group ``LambdaLR``."""
    schedule = trainer.schedule
    if type(schedule) is not LambdaLR or len(schedule.optimizer.param_groups) != 1:
        return None
    if not isinstance(schedule.optimizer.param_groups[0]["lr"], float):  # a tensor rate steps in place
        return None
    return schedule, schedule.base_lrs[0], schedule.lr_lambdas[0]
