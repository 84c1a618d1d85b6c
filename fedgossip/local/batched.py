"""Train many co-hosted nodes' local steps as one computation, with the results of training each alone.

A rank may host thousands of nodes whose models are tiny (logreg, a small MLP); stepping their
:class:`~fedgossip.local.trainer.LocalTrainer` objects one after another spends the time in Python,
not in arithmetic. :class:`BatchedTraining` stacks the nodes' flat parameter vectors into one
``[nodes, numel]`` matrix, runs the forward pass of every node at once with ``torch.func.vmap`` over
``functional_call`` of one shared template module, back-propagates the sum of the nodes' losses (each
row's gradient is that node's own, the losses being independent), and takes the optimizer step on the
stacked rows. Each node keeps its own data order (its stream's batches, gathered at once and padded
by :mod:`~fedgossip.local.stacked_batches`), learning rate (its schedule, read in closed form by
:mod:`~fedgossip.local.stacked_rates`) and optimizer state; everything is written back after the steps.

The results equal a per-node run up to float rounding, not bit for bit: the vmapped matmuls sum in
another order than a single node's, which moves gradients by about one ulp.
"""

from __future__ import annotations

import numbers
import re
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch.func import vmap

from fedgossip.errors import ConfigError
from fedgossip.local.optim import _ADAM, _SGD
from fedgossip.local.stacked_batches import StackedBatches
from fedgossip.local.stacked_rates import StackedRates
from fedgossip.local.stacking import architecture, flat_layout, model_problems, reasons, stacked_call
from fedgossip.local.trainer import LocalStats, LocalTrainer, TrainingDiverged

__all__ = ["batchable", "BatchedTraining"]

_SHOWN_NODES = 5  # bad step counts an error shows


def batchable(trainers: Sequence[LocalTrainer]) -> str | None:
    """Return ``None`` when :class:`BatchedTraining` can train ``trainers`` together, else every reason not.

    Each reason names the nodes (indices into ``trainers``) it applies to; node 0 is the
    reference the others must match. Unequal batch sizes are no reason: smaller batches
    are padded, and masked out of the loss.
    """
    if not trainers:
        return "there are no trainers"
    reference = trainers[0]
    signature = architecture(reference.model)
    owners: dict[str, dict[int, int]] = {"model": {}, "stream": {}, "optimizer": {}}

    def problems(index: int, trainer: LocalTrainer) -> list[str]:
        found = _trainer_problems(trainer, reference)
        found += model_problems(trainer.model, trainer.flat, signature, training=True)
        found += _device_problems(trainer, reference) + _optimizer_problems(trainer, reference)
        for role, seen in owners.items():
            owner = seen.setdefault(id(getattr(trainer, role)), index)
            if owner != index:
                found.append(f"shares its {role} with node {owner}")
        return found

    return reasons(trainers, problems)


class BatchedTraining:
    """Take the local steps of several nodes as one computation, leaving each node as its own run would.

    Parameters
    ----------
    trainers
        The nodes' trainers: one architecture, one optimizer kind and setting (the learning
        rate aside), one device; :func:`batchable` says what is refused, and the constructor
        raises ``ConfigError`` with its reasons. The trainers stay the nodes' own: nothing of
        theirs is held between calls of :meth:`run`, so per-node steps may come in between.
    """

    def __init__(self, trainers: Sequence[LocalTrainer]):
        reason = batchable(trainers)
        if reason is not None:
            raise ConfigError(f"cannot train these nodes as one batch: {reason}; train them one by one")
        self.trainers = tuple(trainers)
        reference = self.trainers[0]
        self._layout = flat_layout(reference.flat)
        self._device = reference.flat.device
        self._stacked = _STACKED[type(reference.optimizer)]
        logits = stacked_call(reference.model, self._layout, training=True)  # no node's own module is touched
        loss_fn = reference.loss_fn

        def node_loss(weights: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return loss_fn(logits(weights, x), y)

        def padded_node_loss(weights, x, y, mask, size) -> torch.Tensor:
            # the batch's mean over its real samples: padding weighs 0, so it adds no gradient either
            return (loss_fn(logits(weights, x), y, reduction="none") * mask).sum() / size

        self._losses = vmap(node_loss)
        self._padded_losses = vmap(padded_node_loss)
        self._batches = StackedBatches([trainer.stream for trainer in self.trainers])

    def run(self, steps: int | Sequence[int]) -> list[LocalStats]:
        """Take ``steps`` steps on every node (or ``steps[i]`` on node ``i``); return each node's stats.

        A node's ``seconds`` is its share, in proportion to the samples it trained on, of the
        whole call's time (stacking the nodes' state and writing it back included). Raises
        :class:`TrainingDiverged` naming the first node whose loss became NaN or infinite,
        after every node's state is written back (as a per-node run leaves its model); no
        node's totals are then counted.
        """
        trainers = self.trainers
        counts = self._counts(steps)
        # a plugin may have set an observer or a hook since construction; the rest stays as checked
        reason = reasons(trainers, lambda _, trainer: _trainer_problems(trainer, trainers[0]))
        if reason is not None:
            raise ConfigError(f"cannot train these nodes as one batch any more: {reason}")
        for trainer in trainers:
            trainer.flat.check()
            trainer.model.train()
        start = time.perf_counter()
        weights = torch.stack([trainer.flat.flat for trainer in trainers])
        grads = torch.zeros_like(weights)
        optimizer = self._stacked([trainer.optimizer for trainer in trainers], self._layout)
        rates = StackedRates(trainers, self._device)
        losses = torch.zeros(len(trainers), max(counts, default=0), dtype=torch.float64, device=self._device)
        samples = [0] * len(trainers)
        corrections = _StackedCorrections(trainers)
        with warnings.catch_warnings():
            # a fresh schedule warns when its first step follows no optimizer.step(); ours was batched
            warnings.filterwarnings(
                "ignore", re.escape("Detected call of `lr_scheduler.step()`"), UserWarning
            )
            for step in range(losses.shape[1]):
                active = [index for index, count in enumerate(counts) if count > step]
                self._gradients(active, step, weights, grads, losses, samples)
                step_rates = rates.rates(active)
                optimizer.step(self._rows(active), weights, grads, step_rates)
                corrections.apply(self._rows(active), weights, step_rates)
                rates.stepped(active)
        rates.settle()
        corrections.settle()
        self._write_back(weights, grads, optimizer, [index for index, count in enumerate(counts) if count])
        losses = losses.cpu()  # waits for the device, so the clock stops after the work
        seconds = time.perf_counter() - start
        _check_finite(losses)
        total = sum(samples)
        stats = []
        for trainer, count, node_samples, loss_sum in zip(
            trainers, counts, samples, losses.sum(1), strict=True
        ):
            share = seconds * node_samples / total if total else 0.0
            trainer.total_steps += count
            trainer.total_seconds += share
            stats.append(LocalStats(count, node_samples, float(loss_sum), share))
        return stats

    def _counts(self, steps: int | Sequence[int]) -> list[int]:
        """Return the number of steps of each node, refusing negative or missing ones."""
        counts = [steps] * len(self.trainers) if isinstance(steps, numbers.Integral) else list(steps)
        problems = []
        if len(counts) != len(self.trainers):
            problems.append(f"got {len(counts)} step counts for {len(self.trainers)} nodes")
        bad = [
            count
            for count in counts
            if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0
        ]
        if bad:
            problems.append(f"the number of local steps must be an integer >= 0, got {bad[:_SHOWN_NODES]}")
        if problems:
            raise ValueError("; ".join(problems))
        return [int(count) for count in counts]

    def _write_back(
        self, weights: torch.Tensor, grads: torch.Tensor, optimizer: _StackedOptimizer, stepped: list[int]
    ) -> None:
        """Put the stacked rows of the nodes ``stepped`` back into their own vectors and optimizers."""
        for index in stepped:
            flat = self.trainers[index].flat
            flat.flat.copy_(weights[index])  # in place: the model and the gossip algorithm view this vector
            flat.zero_grad()  # rebinds any .grad detached from flat_grad, as a per-node step does
            flat.flat_grad.copy_(grads[index])  # the node's last gradient, as a per-node run leaves it
        optimizer.store([trainer.optimizer for trainer in self.trainers], stepped)

    def _gradients(
        self,
        active: list[int],
        step: int,
        weights: torch.Tensor,
        grads: torch.Tensor,
        losses: torch.Tensor,
        samples: list[int],
    ) -> None:
        """Draw each active node's next batch, and write its gradient into ``grads`` and loss into ``losses``.

        One vmapped computation for all of them: where a stream serves a short batch (its
        epoch's end, or a shard smaller than the batch size) the batches come padded and masked.
        """
        batch = self._batches.next(active)
        rows = self._rows(active)
        with torch.enable_grad():
            leaf = weights[rows].detach().requires_grad_()
            if batch.mask is None:
                node_losses = self._losses(leaf, batch.x, batch.y)
            else:
                sizes = batch.sizes.to(leaf.dtype)
                node_losses = self._padded_losses(leaf, batch.x, batch.y, batch.mask, sizes)
            (grads[rows],) = torch.autograd.grad(node_losses.sum(), leaf)
        # summed over the batch in float32, then kept in float64, as LocalTrainer does
        losses[rows, step] = (node_losses.detach() * batch.sizes.to(node_losses.dtype)).double()
        for index, size in zip(active, batch.sizes.tolist(), strict=True):
            samples[index] += size

    def _rows(self, indices: list[int]) -> slice | torch.Tensor:
        """Return an index of the stacked rows ``indices``: a plain slice when they are all the rows."""
        if len(indices) == len(self.trainers):
            return slice(None)
        return torch.tensor(indices, dtype=torch.long, device=self._device)


class _StackedOptimizer(ABC):
    """A torch optimizer's step on stacked rows, one per node, its per-parameter state held as matrices.

    Built from the nodes' optimizers at the start of a run (state they lack starts as torch
    starts it), stepped on some rows at a time, and stored back into them at its end.
    """

    settings: ClassVar[frozenset[str]]  # the param-group settings, lr aside, that the step implements

    def __init__(self, optimizers: list[torch.optim.Optimizer], layout: tuple):
        self._layout = layout
        self._group = optimizers[0].param_groups[0]  # every node's settings but lr are node 0's

    @staticmethod
    @abstractmethod
    def state_problems(optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor]) -> list[str]:
        """Return why ``optimizer``'s state over ``params`` cannot be stacked (held for some only)."""

    @abstractmethod
    def step(
        self, rows: slice | torch.Tensor, weights: torch.Tensor, grads: torch.Tensor, rates: torch.Tensor
    ):
        """Update ``weights[rows]`` from ``grads[rows]`` at each row's rate in ``rates`` (float64)."""

    @abstractmethod
    def store(self, optimizers: list[torch.optim.Optimizer], stepped: list[int]) -> None:
        """Write the state of the nodes ``stepped`` back into their optimizers."""


class _StackedSgd(_StackedOptimizer):
    """``torch.optim.SGD``'s single-tensor step: weight decay, momentum, dampening, Nesterov, maximize."""

    settings = frozenset(
        {
            "momentum",
            "dampening",
            "weight_decay",
            "nesterov",
            "maximize",
            "foreach",
            "differentiable",
            "fused",
        }
    )

    def __init__(self, optimizers: list[torch.optim.Optimizer], layout: tuple):
        super().__init__(optimizers, layout)
        if self._group["momentum"]:
            # torch starts a node's buffer as a copy of its first step's gradient: "fresh" rows have none yet
            self.buffers, self.fresh = _gather(optimizers, "momentum_buffer", layout)

    @staticmethod
    def state_problems(optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor]) -> list[str]:
        held = {optimizer.state.get(p, {}).get("momentum_buffer") is not None for p in params}
        return ["has momentum buffers for some parameters only"] if len(held) > 1 else []

    def step(
        self, rows: slice | torch.Tensor, weights: torch.Tensor, grads: torch.Tensor, rates: torch.Tensor
    ):
        group = self._group
        w, g = weights[rows], grads[rows]
        if group["maximize"]:
            g = -g
        if group["weight_decay"]:
            g = g.add(w, alpha=group["weight_decay"])
        momentum = group["momentum"]
        if momentum:
            running = self.buffers[rows].mul(momentum).add_(g, alpha=1 - group["dampening"])
            buffers = torch.where(self.fresh[rows, None], g, running)
            self.buffers[rows] = buffers
            self.fresh[rows] = False
            g = g.add(buffers, alpha=momentum) if group["nesterov"] else buffers
        weights[rows] = w.addcmul(g, rates.float()[:, None], value=-1)  # torch's form for a tensor lr

    def store(self, optimizers: list[torch.optim.Optimizer], stepped: list[int]) -> None:
        if self._group["momentum"]:
            for index in stepped:
                _scatter(optimizers[index], {"momentum_buffer": self.buffers[index]}, self._layout)


class _StackedAdam(_StackedOptimizer):
    """``torch.optim.Adam``'s single-tensor step, AMSGrad and decoupled weight decay (AdamW) included."""

    settings = frozenset(
        {
            "betas",
            "eps",
            "weight_decay",
            "amsgrad",
            "maximize",
            "foreach",
            "capturable",
            "differentiable",
            "fused",
            "decoupled_weight_decay",
        }
    )

    def __init__(self, optimizers: list[torch.optim.Optimizer], layout: tuple):
        super().__init__(optimizers, layout)
        keys = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self._group["amsgrad"] else ())
        # state a node lacks starts at zero, as torch starts it
        self.moments = {key: _gather(optimizers, key, layout)[0] for key in keys}
        first = [optimizer.state.get(optimizer.param_groups[0]["params"][0]) for optimizer in optimizers]
        steps = [float(state["step"]) if state else 0.0 for state in first]
        self.steps = torch.tensor(steps, dtype=torch.float64, device=self.moments["exp_avg"].device)

    @staticmethod
    def state_problems(optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor]) -> list[str]:
        states = [optimizer.state.get(p) for p in params]
        if len({bool(state) for state in states}) > 1:
            return ["has Adam state for some parameters only"]
        if states[0] and len({float(state["step"]) for state in states}) > 1:
            return ["has parameters at different Adam step counts"]
        return []

    def step(
        self, rows: slice | torch.Tensor, weights: torch.Tensor, grads: torch.Tensor, rates: torch.Tensor
    ):
        group = self._group
        beta1, beta2 = group["betas"]
        w, g = weights[rows], grads[rows]
        if group["maximize"]:
            g = -g
        steps = self.steps[rows] + 1
        self.steps[rows] = steps
        rates, steps = rates[:, None], steps[:, None]
        if group["weight_decay"]:
            if group.get("decoupled_weight_decay"):
                w = w * (1 - rates * group["weight_decay"]).float()
            else:
                g = g.add(w, alpha=group["weight_decay"])
        exp_avg = self.moments["exp_avg"][rows].lerp(g, 1 - beta1)
        exp_avg_sq = self.moments["exp_avg_sq"][rows].mul(beta2).addcmul_(g, g, value=1 - beta2)
        self.moments["exp_avg"][rows], self.moments["exp_avg_sq"][rows] = exp_avg, exp_avg_sq
        if group["amsgrad"]:
            # AMSGrad (Reddi et al. 2018): the running maximum of the second moments
            exp_avg_sq = torch.maximum(self.moments["max_exp_avg_sq"][rows], exp_avg_sq)
            self.moments["max_exp_avg_sq"][rows] = exp_avg_sq
        # the bias corrections of Kingma & Ba (2015), Algorithm 1, in float64 as torch computes them
        step_size = (rates / (1 - beta1**steps)).float()
        correction2_sqrt = ((1 - beta2**steps) ** 0.5).float()
        denominator = (exp_avg_sq.sqrt() / correction2_sqrt).add_(group["eps"])
        weights[rows] = w - step_size * exp_avg / denominator

    def store(self, optimizers: list[torch.optim.Optimizer], stepped: list[int]) -> None:
        scalar = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32  # as Adam's
        for index in stepped:
            optimizer = optimizers[index]
            count = float(self.steps[index])
            for p in optimizer.param_groups[0]["params"]:
                state = optimizer.state[p]
                if "step" in state:
                    state["step"].fill_(count)
                else:
                    state["step"] = torch.tensor(count, dtype=scalar)  # on the host, as Adam keeps it
            _scatter(optimizer, {key: rows[index] for key, rows in self.moments.items()}, self._layout)


# torch's optimizers and the eager forms make_optimizer builds, by the stacked step that mirrors them
_STACKED: dict[type, type[_StackedOptimizer]] = {
    torch.optim.SGD: _StackedSgd,
    _SGD: _StackedSgd,
    torch.optim.Adam: _StackedAdam,
    _ADAM: _StackedAdam,
}
if issubclass(torch.optim.AdamW, torch.optim.Adam):  # torch >= 2.6: Adam's step, decoupled_weight_decay set
    _STACKED[torch.optim.AdamW] = _StackedAdam


def _gather(
    optimizers: list[torch.optim.Optimizer], key: str, layout: tuple
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack every optimizer's state ``key`` into rows; return them and which rows had none (left zero)."""
    params = [optimizer.param_groups[0]["params"] for optimizer in optimizers]
    reference = params[0][0]
    rows = torch.zeros(len(optimizers), layout[-1][3], dtype=reference.dtype, device=reference.device)
    missing = torch.ones(len(optimizers), dtype=torch.bool, device=reference.device)
    for index, (optimizer, tensors) in enumerate(zip(optimizers, params, strict=True)):
        held = [optimizer.state.get(p, {}).get(key) for p in tensors]
        if held[0] is not None:
            rows[index] = torch.cat([tensor.reshape(-1) for tensor in held])
            missing[index] = False
    return rows, missing


def _scatter(optimizer: torch.optim.Optimizer, rows: dict[str, torch.Tensor], layout: tuple) -> None:
    """Write each stacked ``rows[key]`` into ``optimizer``'s per-parameter state, in place where it exists."""
    for p, (_, shape, start, stop) in zip(optimizer.param_groups[0]["params"], layout, strict=True):
        state = optimizer.state[p]
        for key, row in rows.items():
            value = row[start:stop].view(shape)
            if isinstance(state.get(key), torch.Tensor):
                state[key].copy_(value)  # others (a checkpoint in progress) may hold the tensor
            else:
                state[key] = value.clone()


def _check_finite(losses: torch.Tensor) -> None:
    """Raise :class:`TrainingDiverged` for the first node (row) of ``losses`` with a NaN or infinite step."""
    bad = torch.nonzero(~torch.isfinite(losses))
    if len(bad):
        node, step = int(bad[0, 0]), int(bad[0, 1]) + 1
        error = TrainingDiverged(step)
        error.args = (f"node {node} of a batch of {len(losses)}: {error.args[0]}",)
        error.node = node
        raise error


def _trainer_problems(trainer: LocalTrainer, reference: LocalTrainer) -> list[str]:
    """Return why ``trainer``'s own step differs from a plain one: what plugins and privacy set on it."""
    problems = []
    if type(trainer) is not LocalTrainer:
        problems.append(f"is a {type(trainer).__name__}, whose steps may differ from LocalTrainer's")
    if trainer.gradient != trainer._batch_gradient:  # LocalTrainer's default: the plain batch gradient
        problems.append("builds its own gradients (DP-SGD)")
    if trainer.gradient_hook is not None:
        problems.append("has a gradient hook (COMP-AMS exchanges every step's gradient)")
    if trainer.observer is not None:
        problems.append("has an observer (a training-time plugin scores every batch)")
    if trainer.stretcher is not None:
        problems.append("has a stretcher (--slowdown times every step)")
    if trainer.loss_fn is not reference.loss_fn:
        problems.append("uses another loss function than node 0")
    if (trainer.correction is None) != (reference.correction is None):
        has = "has no" if trainer.correction is None else "has an"
        problems.append(f"{has} update correction, unlike node 0")
    return problems


class _StackedCorrections:
    """The nodes' update corrections (gt) as one matrix: x ← x − η c after each batched step."""

    def __init__(self, trainers: Sequence[LocalTrainer]):
        self._corrections = [trainer.correction for trainer in trainers]
        self._offsets = self._rate_sums = None
        if self._corrections[0] is not None:
            self._offsets = torch.stack([correction.offset for correction in self._corrections])
            self._rate_sums = torch.zeros(len(trainers), dtype=torch.float64, device=self._offsets.device)

    def apply(self, rows: slice | torch.Tensor, weights: torch.Tensor, rates: torch.Tensor) -> None:
        if self._offsets is not None:
            weights[rows] = weights[rows].addcmul(self._offsets[rows], rates.float()[:, None], value=-1)
            self._rate_sums[rows] += rates

    def settle(self) -> None:
        """Add each node's Σ η of this call to its own correction."""
        if self._offsets is not None:
            for correction, total in zip(self._corrections, self._rate_sums.tolist(), strict=True):
                correction.rate_sum += total


def _device_problems(trainer: LocalTrainer, reference: LocalTrainer) -> list[str]:
    problems = []
    device = trainer.flat.device
    if device != reference.flat.device:
        problems.append(f"trains on {device}, not on node 0's {reference.flat.device}")
    served = trainer.stream.full_batch()[0]
    if served.device != device:
        problems.append(f"serves batches on {served.device} but trains on {device}")
    return problems


def _optimizer_problems(trainer: LocalTrainer, reference: LocalTrainer) -> list[str]:
    optimizer = trainer.optimizer
    stacked = _STACKED.get(type(optimizer))
    if stacked is None:
        known = ", ".join(sorted({kind.__name__ for kind in _STACKED}))
        return [f"uses {type(optimizer).__name__}, which batched steps do not mirror (they do {known})"]
    if stacked is not _STACKED.get(type(reference.optimizer)):  # torch's SGD and the eager one mix
        return [f"uses {type(optimizer).__name__}, not node 0's {type(reference.optimizer).__name__}"]
    if len(optimizer.param_groups) != 1:
        return [f"has {len(optimizer.param_groups)} parameter groups, where batched steps need one"]
    group = optimizer.param_groups[0]
    problems = []
    params = group["params"]
    if len(params) != len(trainer.flat.params) or any(
        a is not b for a, b in zip(params, trainer.flat.params, strict=False)
    ):
        problems.append("has an optimizer over other tensors than its flat parameters")
    settings = _settings(optimizer)
    if unknown := sorted(set(settings) - stacked.settings):
        problems.append(f"sets {', '.join(unknown)}, which a batched {type(optimizer).__name__} step ignores")
    elif any(isinstance(value, torch.Tensor) for value in group.values() if value is not params):
        problems.append("has tensor-valued optimizer settings")
    elif any(group.get(flag) for flag in ("fused", "capturable", "differentiable")):
        problems.append("uses a fused, capturable or differentiable optimizer")
    elif settings != _settings(reference.optimizer):
        problems.append("has other optimizer settings than node 0 (the learning rate may differ)")
    if getattr(optimizer, "_optimizer_step_pre_hooks", None) or getattr(
        optimizer, "_optimizer_step_post_hooks", None
    ):
        problems.append("has optimizer step hooks, which a batched step would skip")
    problems += stacked.state_problems(optimizer, trainer.flat.params)
    return problems


def _settings(optimizer: torch.optim.Optimizer) -> dict:
    group = optimizer.param_groups[0]
    return {key: value for key, value in group.items() if key not in ("params", "lr", "initial_lr")}
