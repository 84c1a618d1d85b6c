"""``hide``: importance filtering, each node hiding its easiest samples from the coming epochs.

KAKURENBO (Truong Thao Nguyen et al., NeurIPS 2023, "KAKURENBO: Adaptively Hiding
Samples in Deep Neural Network Training") scores every sample by the loss it had in
the epoch that just ran, so scoring costs no extra pass, and leaves up to a fraction F
of the lowest-loss samples out of the next epoch. A sample the model mispredicts, or
predicts correctly with a confidence below a threshold, is never hidden: its gradient
still teaches something. F may shrink from epoch to epoch (F·decay^e), and the
learning rate is scaled by 1/(1 − F_eff), since an epoch of fewer samples takes fewer
steps. Hidden samples are never served, so their scores would stay stale: they get a
forward pass before the decision, every ``rescore`` epochs (every epoch in the paper).

Here a round is H steps' worth of the whole shard; with a share v of it visible, the
round takes ceil(H·v) steps, which is where the time is saved, and the learning-rate
schedule is moved on by the steps skipped, so it still ends with the last round.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from fedgossip.errors import ConfigError
from fedgossip.plugins.base import PluginHost, TrainingPlugin
from fedgossip.registry import check_params
from fedgossip.specs import Param

__all__ = ["ImportanceFilter"]

_RESCORE_CHUNK = 1024  # samples per forward pass when rescoring: bounds the activations held at once
_STATE_KEYS = {
    "loss",
    "correct",
    "confidence",
    "hidden",
    "generation",
    "skipped_steps",
    "rescored",
    "fraction",
}


class ImportanceFilter(TrainingPlugin):
    """Hide up to a fraction F of the lowest-loss, confidently correct samples from each epoch.

    Metrics: ``hidden_fraction`` is the share of the samples the stream serves that is
    hidden now; ``filter_skipped_steps`` the local steps skipped so far;
    ``filter_rescored`` the samples forward-passed so far to rescore hidden ones;
    ``filter_saved_s`` the compute seconds the skipped steps would have taken, at the
    trainer's mean seconds per step (0 before any step).
    """

    name = "hide"
    kind = "filter"
    one_node_per_rank = False  # it keeps to its own node's samples: nothing to send
    params = (
        Param("fraction", float, 0.3, "the most a node hides in an epoch (F)", ge=0, lt=1),
        Param(
            "threshold",
            float,
            0.7,
            "a correct prediction less confident than this (max softmax) is never hidden",
            ge=0,
            le=1,
        ),
        Param("decay", float, 1.0, "F at the e-th hiding epoch is fraction·decay^e", gt=0, le=1),
        Param("rescore", int, 1, "epochs between forward passes over the hidden samples", ge=1),
        Param("warmup", int, 1, "epochs on every sample before hiding starts (each needs a score)", ge=1),
    )
    metrics = ("hidden_fraction", "filter_skipped_steps", "filter_rescored", "filter_saved_s")

    def __init__(
        self,
        fraction: float = 0.3,
        threshold: float = 0.7,
        decay: float = 1.0,
        rescore: int = 1,
        warmup: int = 1,
    ):
        check_params(
            type(self), fraction=fraction, threshold=threshold, decay=decay, rescore=rescore, warmup=warmup
        )
        # tuned by the user
        self.fraction = float(fraction)
        self.threshold = float(threshold)
        self.decay = float(decay)
        self.rescore = int(rescore)
        self.warmup = int(warmup)
        # internal: per-sample scores by stream position (loss +inf: never scored), and counters
        self._host: PluginHost | None = None
        self._loss = np.zeros(0, dtype=np.float64)
        self._correct = np.zeros(0, dtype=bool)
        self._confidence = np.zeros(0, dtype=np.float64)
        self._hidden = np.zeros(0, dtype=np.int64)
        self._generation = -1  # the stream's generation (set_extra calls) the scores refer to
        self._skipped_steps = 0
        self._rescored = 0
        self._fraction = 0.0  # F_eff: the share hidden by the last decision

    def check(self, algorithm: Any, config: Any, privacy: Any) -> None:
        """Refuse gradient-exchanging algorithms and sample-level DP, naming each fix.

        --async is refused for every plugin that declares ``synchronous_only``, where plugins are resolved.
        """
        problems = []
        if getattr(algorithm, "exchanges_gradients", False):
            name = getattr(algorithm, "name", "the algorithm")
            problems.append(
                f"{name} reduces gradients across nodes at every step, so every node must take the same "
                "number of steps, which hiding samples changes; use another --algorithm or drop --filter"
            )
        if privacy is not None and getattr(privacy, "level", None) == "sample":
            problems.append(
                f"--dp {privacy.name} accounts for Poisson samples of the whole shard, but the filter "
                "picks the samples that train by their losses; use --dp dp-update or drop --filter"
            )
        if problems:
            raise ConfigError(f"--filter {self.name} cannot run here: " + "; ".join(problems))

    def start(self, host: PluginHost) -> None:
        """Score every sample the trainer trains on, and decide what to hide at each epoch start."""
        self._attach(host)
        self._resize(host.stream.num_samples, keep=0)
        self._generation = host.stream.generation

    def restore(self, host: PluginHost, state: dict[str, Any]) -> None:
        """Attach to a resumed run with the checkpoint's scores, deciding nothing now.

        The stream restores its hidden samples itself, and the trainer its learning-rate
        scale; the next epoch start decides as the interrupted run would have.
        """
        self._attach(host)
        self.load_state_dict(state)

    def _attach(self, host: PluginHost) -> None:
        """Hook the trainer's observer and the stream's epoch start, which only one plugin may hold."""
        if host.trainer.observer is not None or host.stream.on_epoch_start is not None:
            raise ConfigError(
                f"--filter {self.name} needs the trainer's observer and the stream's on_epoch_start, "
                "but another plugin set them; use one filter at a time"
            )
        self._host = host
        host.stream.on_epoch_start = self._new_epoch
        host.trainer.observer = self._observe

    def before_round(self, round_index: int, steps: int) -> int:
        """Shrink the round to the visible share of the shard; move the schedule past the steps skipped."""
        if steps == 0:
            return 0
        host = self._started()
        # decide what the coming epoch hides before sizing the round by it, not at its first batch
        host.stream.begin_epoch()
        # integer ceil(steps·visible/n): a float product such as 10·0.7 would round up to 8
        taken = max(1, -(-steps * host.stream.visible_samples // host.stream.num_samples))
        skipped = steps - taken
        host.trainer.advance_schedule(skipped)
        self._skipped_steps += skipped
        return taken

    def values(self) -> tuple[float, ...]:
        if self._host is None:
            return (0.0, float(self._skipped_steps), float(self._rescored), 0.0)
        stream, trainer = self._host.stream, self._host.trainer
        per_step = trainer.total_seconds / trainer.total_steps if trainer.total_steps else 0.0
        return (
            1.0 - stream.visible_samples / stream.num_samples,
            float(self._skipped_steps),
            float(self._rescored),
            self._skipped_steps * per_step,
        )

    def state_dict(self) -> dict[str, Any]:
        """Return the scores, the last decision, the stream generation they refer to, and the counters."""
        return {
            "loss": self._loss.copy(),
            "correct": self._correct.copy(),
            "confidence": self._confidence.copy(),
            "hidden": self._hidden.copy(),
            "generation": self._generation,
            "skipped_steps": self._skipped_steps,
            "rescored": self._rescored,
            "fraction": self._fraction,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore this filter's own state only; the stream and the trainer restore what it changed there."""
        if set(state) != _STATE_KEYS:
            raise KeyError(f"filter state needs keys {sorted(_STATE_KEYS)}, got {sorted(state)}")
        loss = np.array(state["loss"], dtype=np.float64)
        correct = np.array(state["correct"], dtype=bool)
        confidence = np.array(state["confidence"], dtype=np.float64)
        hidden = np.array(state["hidden"], dtype=np.int64)
        if not len(loss) == len(correct) == len(confidence) or (len(hidden) and hidden.max() >= len(loss)):
            raise ValueError(
                f"filter state scores {len(loss)}, {len(correct)} and {len(confidence)} samples and hides "
                f"positions up to {hidden.max() if len(hidden) else None}; it is not one filter's state"
            )
        self._loss, self._correct, self._confidence, self._hidden = loss, correct, confidence, hidden
        self._generation = int(state["generation"])
        self._skipped_steps = int(state["skipped_steps"])
        self._rescored = int(state["rescored"])
        self._fraction = float(state["fraction"])

    def _observe(
        self, positions: torch.Tensor, losses: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor
    ) -> None:
        """Record each sample's loss, correctness and confidence from the batch just trained on."""
        confidence, predicted = logits.float().softmax(dim=1).max(dim=1)
        # one transfer per batch: float64 holds the positions exactly
        rows = torch.stack(
            (positions.double(), losses.double(), (predicted == labels).double(), confidence.double())
        ).cpu()
        self._record(rows.numpy())

    def _record(self, rows: np.ndarray) -> None:
        index = rows[0].astype(np.int64)
        self._loss[index] = rows[1]
        self._correct[index] = rows[2] > 0.5
        self._confidence[index] = rows[3]

    def _new_epoch(self, epoch: int) -> None:
        """Decide which samples the epoch about to be drawn leaves out, and scale the learning rate."""
        host = self._started()
        self._follow_stream()
        if epoch < self.warmup:
            self._hide(np.zeros(0, dtype=np.int64))
            return
        hiding_epoch = epoch - self.warmup
        if hiding_epoch % self.rescore == 0 and len(self._hidden):
            self._rescore(self._hidden)
        n = host.stream.num_samples
        # at least one sample stays visible: an epoch of none would never end
        budget = min(math.floor(self.fraction * self.decay**hiding_epoch * n), n - 1)
        candidates = np.flatnonzero(
            np.isfinite(self._loss) & self._correct & (self._confidence >= self.threshold)
        )
        easiest = candidates[np.argsort(self._loss[candidates], kind="stable")[:budget]]
        self._hide(np.sort(easiest))

    def _hide(self, positions: np.ndarray) -> None:
        host = self._started()
        host.stream.hide(positions if len(positions) else None)
        self._hidden = positions
        self._fraction = len(positions) / host.stream.num_samples
        # fewer samples per epoch take fewer steps, each of which moves further (KAKURENBO)
        host.trainer.set_lr_scale(1.0 / (1.0 - self._fraction))

    def _rescore(self, positions: np.ndarray) -> None:
        """Score ``positions`` with a forward pass of the current model, in evaluation mode, no gradients."""
        host = self._started()
        x, y = host.stream.full_batch()
        was_training = host.model.training
        host.model.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(positions), _RESCORE_CHUNK):
                    index = torch.from_numpy(positions[start : start + _RESCORE_CHUNK]).to(y.device)
                    labels = y.index_select(0, index)
                    logits = host.model(x.index_select(0, index))
                    self._observe(
                        index, host.trainer.loss_fn(logits, labels, reduction="none"), logits, labels
                    )
        finally:
            host.model.train(was_training)
        self._rescored += len(positions)

    def _follow_stream(self) -> None:
        """Forget the scores of samples another plugin replaced with ``set_extra``.

        ``set_extra`` moves the stream to a new generation, keeps the shard's own samples
        first and clears the hidden set. Only the extra positions may now hold other samples, so
        their scores are dropped: a stale score could hide a sample the model mispredicts.
        """
        stream = self._started().stream
        if stream.generation == self._generation:
            return
        self._resize(stream.num_samples, keep=stream.own_samples)
        self._hidden = np.zeros(0, dtype=np.int64)
        self._generation = stream.generation

    def _resize(self, n: int, keep: int) -> None:
        """Size the scores for ``n`` samples, keeping the first ``keep``; the others are unscored."""
        keep = min(keep, n, len(self._loss))
        loss = np.full(n, np.inf)
        correct = np.zeros(n, dtype=bool)
        confidence = np.zeros(n)
        loss[:keep], correct[:keep], confidence[:keep] = (
            self._loss[:keep],
            self._correct[:keep],
            self._confidence[:keep],
        )
        self._loss, self._correct, self._confidence = loss, correct, confidence

    def _started(self) -> PluginHost:
        if self._host is None:
            raise RuntimeError(f"call start(host) before using the {self.name} filter")
        return self._host
