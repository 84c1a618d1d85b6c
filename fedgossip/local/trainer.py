"""The local step loop: H optimizer steps on a node's own shard, between two communication rounds."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.functional import cross_entropy
from torch.optim import Optimizer

from fedgossip.errors import FedGossipError
from fedgossip.local.batches import BatchStream
from fedgossip.local.correction import UpdateCorrection
from fedgossip.local.flat import FlatParameters
from fedgossip.local.optim import Schedule
from fedgossip.local.slowdown import StepStretcher

__all__ = ["TrainingDiverged", "LocalStats", "LocalTrainer"]


class TrainingDiverged(FedGossipError):
    """The training loss became NaN or infinite; ``step`` is the 1-based local step where it first did."""

    def __init__(self, step: int):
        super().__init__(f"loss became NaN/Inf at local step {step}; lower --lr or check the data")
        self.step = step


@dataclass(frozen=True)
class LocalStats:
    """What one call of :meth:`LocalTrainer.run` did.

    ``loss_sum`` is summed over samples (each batch's mean loss times its size), so
    stats of several calls can be added up and divided by their total ``samples``.
    ``seconds`` is compute time only: forward, backward and optimizer steps, plus the
    sleep that simulates a slower rank (``--slowdown``), which ``stretched_seconds``
    counts apart.
    """

    steps: int
    samples: int
    loss_sum: float
    seconds: float
    stretched_seconds: float = 0.0  # part of ``seconds`` slept by the stretcher

    @property
    def mean_loss(self) -> float:
        """Return the mean training loss per sample, NaN when no step was taken."""
        return self.loss_sum / self.samples if self.samples else math.nan


class LocalTrainer:
    """Run local optimizer steps on one node's model.

    Parameters
    ----------
    model
        The module whose parameters ``flat`` holds.
    flat
        The model's parameters as one vector; its :meth:`FlatParameters.zero_grad` is used
        instead of the optimizer's, which would detach the gradients from ``flat_grad``.
    optimizer
        An optimizer over ``model``'s parameters (see :func:`fedgossip.local.optim.make_optimizer`).
    schedule
        Stepped once per optimizer step, or ``None`` for a constant learning rate.
    stream
        The shard's batches.
    loss_fn
        ``loss_fn(logits, labels)`` returning the batch's mean loss.
    gradient_hook
        Called with the flat gradient between backward and the optimizer step, to
        replace it in place (COMP-AMS averages compressed gradients across ranks
        there). Its time is not compute time and is left out of ``seconds``.
    stretcher
        Stretches every step's compute time (not the gradient hook's) to simulate a
        slower rank, or ``None`` to run at full speed. Steps are timed with its clock.
    gradient
        Builds each step's gradient into ``flat.flat_grad`` and returns the step's summed
        loss and sample count, instead of a plain backward on the stream's next batch
        (DP-SGD samples, clips and noises there), or ``None`` for the plain batches.

    ``correction`` (an :class:`~fedgossip.local.correction.UpdateCorrection`, set by an algorithm
    that tracks the network's direction, e.g. ``gt``) moves the model by −η·c after every
    optimizer step; ``None`` leaves the steps plain.

    Attributes a training-time plugin may set: ``observer(positions, losses, logits, labels)``
    is called after every plain batch with each sample's position in the stream and
    its own loss (``loss_fn`` is then called with ``reduction="none"``), so an importance
    filter scores samples during the epoch it runs, with no extra pass.
    """

    def __init__(
        self,
        model: nn.Module,
        flat: FlatParameters,
        optimizer: Optimizer,
        schedule: Schedule | None,
        stream: BatchStream,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = cross_entropy,
        gradient_hook: Callable[[torch.Tensor], None] | None = None,
        stretcher: StepStretcher | None = None,
        gradient: Callable[[], tuple[torch.Tensor, int]] | None = None,
    ):
        self.model = model
        self.flat = flat
        self.optimizer = optimizer
        self.schedule = schedule
        self.stream = stream
        self.loss_fn = loss_fn
        self.gradient_hook = gradient_hook
        self.stretcher = stretcher
        self.gradient = gradient or self._batch_gradient
        self.observer: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], None] | None = None
        self.correction: UpdateCorrection | None = None
        self.lr_scale = 1.0  # set with set_lr_scale
        self.total_steps = 0  # optimizer steps taken over the whole run, and their compute seconds
        self.total_seconds = 0.0
        # one clock for the steps, the hook and the stretcher, so their times add up
        self._clock = stretcher.clock if stretcher is not None else time.perf_counter

    def run(self, steps: int) -> LocalStats:
        """Take ``steps`` optimizer steps and return what they did.

        Raises :class:`TrainingDiverged` if any step's loss is NaN or infinite. The check
        happens once, after the last step: reading each loss back to the host would stall
        a GPU after every step. The model is unusable after a divergence either way.
        """
        stepping = self.stepwise(steps, pause=self.gradient_hook is not None)
        try:
            gradient = next(stepping)
            while True:
                self.gradient_hook(gradient)
                gradient = stepping.send(None)
        except StopIteration as done:
            return done.value

    def stepwise(self, steps: int, pause: bool = True) -> Generator[torch.Tensor, None, LocalStats]:
        """Take ``steps`` steps as :meth:`run` does, yielding the flat gradient before each optimizer step.

        With ``pause`` the caller may replace the gradient in place before resuming (COMP-AMS
        averages every node's there: co-hosted nodes step in lockstep); the time until it
        resumes is not compute time. Without it nothing is yielded. Returns the stats.
        """
        if steps < 0:
            raise ValueError(f"the number of local steps must be >= 0, got {steps}")
        self.flat.check()
        self.model.train()
        losses = torch.zeros(steps, dtype=torch.float64, device=self.flat.device)  # summed over each batch
        sizes = torch.zeros(steps, dtype=torch.float64, device=self.flat.device)
        if self.stretcher is not None:
            # work queued before this call would otherwise count as the first step's
            self._wait_for_device()
        start = self._clock()
        paused_seconds = stretched_seconds = 0.0
        for step in range(steps):
            step_start = self._clock()
            loss_sum, size = self.gradient()
            step_paused = 0.0
            if pause:
                # backward runs asynchronously: finish it, or its time would count as the pause's
                self._wait_for_device()
                paused_at = self._clock()
                yield self.flat.flat_grad
                step_paused = self._clock() - paused_at
            paused_seconds += step_paused
            rate = self.optimizer.param_groups[0]["lr"]  # before the schedule moves it on
            self.optimizer.step()
            if self.correction is not None:
                with torch.no_grad():
                    self.correction.apply(self.flat.flat, rate)
            if self.schedule is not None:
                self.schedule.step()
            losses[step] = loss_sum
            sizes[step] = size
            if self.stretcher is not None:
                self._wait_for_device()  # the step's kernels are queued, not done: time them done
                step_seconds = self._clock() - step_start - step_paused
                stretched_seconds += self.stretcher.stretch(step_seconds)
        # moving the losses to the host waits for the device, so the clock stops after the work
        losses, sizes = losses.cpu(), sizes.cpu()
        seconds = self._clock() - start - paused_seconds
        bad = torch.nonzero(~torch.isfinite(losses))
        if len(bad):
            raise TrainingDiverged(int(bad[0, 0]) + 1)
        self.total_steps += steps
        self.total_seconds += seconds
        return LocalStats(
            steps=steps,
            samples=int(sizes.sum()),
            loss_sum=float(losses.sum()),
            seconds=seconds,
            stretched_seconds=stretched_seconds,
        )

    def run_epochs(self, epochs: int) -> LocalStats:
        """Take ``epochs × steps_per_epoch`` steps (passes over the shard, not aligned to epoch starts)."""
        if epochs < 0:
            raise ValueError(f"the number of local epochs must be >= 0, got {epochs}")
        return self.run(epochs * self.stream.steps_per_epoch)

    def set_lr_scale(self, scale: float) -> None:
        """Multiply the learning rate by ``scale`` from the next step on (replacing the previous scale).

        The schedule's base rates are scaled too, so its later steps keep the scale.
        """
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"the learning-rate scale must be a finite number > 0, got {scale}")
        change = scale / self.lr_scale
        for group in self.optimizer.param_groups:
            group["lr"] *= change
        base_lrs = getattr(self.schedule, "base_lrs", None)
        if base_lrs is not None:
            self.schedule.base_lrs = [rate * change for rate in base_lrs]
        self.lr_scale = scale

    def state_dict(self) -> dict[str, Any]:
        """Return the learning-rate scale and the run's totals of steps and seconds (not the optimizer's)."""
        return {
            "lr_scale": self.lr_scale,
            "total_steps": self.total_steps,
            "total_seconds": self.total_seconds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`; the optimizer's rates are left alone.

        The optimizer's and the schedule's own state dicts already hold the scaled rates,
        so only the scale is put back, for the next :meth:`set_lr_scale` to divide by.
        """
        expected = {"lr_scale", "total_steps", "total_seconds"}
        if set(state) != expected:
            raise ValueError(f"trainer state has keys {sorted(state)}, expected {sorted(expected)}")
        scale = float(state["lr_scale"])
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(
                f"trainer state has a learning-rate scale of {scale}; expected a finite number > 0"
            )
        self.lr_scale = scale
        self.total_steps = int(state["total_steps"])
        self.total_seconds = float(state["total_seconds"])

    def advance_schedule(self, steps: int) -> None:
        """Move the schedule ``steps`` steps on without training, for steps a plugin decided to skip."""
        if self.schedule is not None:
            for _ in range(steps):
                self.schedule.step()

    def _batch_gradient(self) -> tuple[torch.Tensor, int]:
        """Back-propagate the loss of the stream's next batch; return its summed loss and size."""
        xb, yb = self.stream.next_batch()
        self.flat.zero_grad()
        logits = self.model(xb)
        if self.observer is None:
            loss = self.loss_fn(logits, yb)
        else:
            losses = self.loss_fn(logits, yb, reduction="none")
            self.observer(self.stream.last_indices, losses.detach(), logits.detach(), yb)
            loss = losses.mean()
        loss.backward()
        return loss.detach() * len(yb), len(yb)

    def _wait_for_device(self) -> None:
        if self.flat.device.type == "cuda":
            torch.cuda.synchronize(self.flat.device)
