"""Local optimizers and learning-rate schedules, chosen by name.

Every optimizer is built with ``foreach=False``: the per-parameter loop updates each
parameter view in place, one after another, which is the simplest behaviour to reason
about when the parameters are views into one flat vector (see
:mod:`fedgossip.local.flat`). The flat vectors are small enough that the fused
multi-tensor kernels buy little.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from fedgossip.errors import ConfigError
from fedgossip.local.quasi_global import QuasiGlobalMomentum
from fedgossip.settings.optimizer_spec import OptimizerChoice, parse_optimizer

__all__ = ["OPTIMIZERS", "SCHEDULES", "Schedule", "make_optimizer", "make_lr_schedule"]


def _eager(base: type[Optimizer]) -> type[Optimizer]:
    """Return ``base`` with its methods called directly, past the guards that keep torch.compile out.

    Each guard imports torch._dynamo on its first call: about 1.4 s of CPU and 70 MB on every
    rank, for a compiler no rank uses. ``functools.wraps`` keeps the guarded function as
    ``__wrapped__``; ``step``'s guard also turned gradients off, which ``no_grad`` does here.
    """
    members = {}
    for name in ("add_param_group", "zero_grad", "state_dict", "load_state_dict"):
        method = getattr(base, name)
        members[name] = getattr(method, "__wrapped__", method)
    if hasattr(base.step, "__wrapped__"):
        members["step"] = torch.no_grad()(base.step.__wrapped__)
    return type(base.__name__, (base,), members)


_SGD, _ADAM, _QGM = _eager(torch.optim.SGD), _eager(torch.optim.Adam), _eager(QuasiGlobalMomentum)


def _sgd(params: Iterable[torch.Tensor], lr: float, momentum: float, weight_decay: float) -> Optimizer:
    return _SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, foreach=False)


def _adam(
    params: Iterable[torch.Tensor],
    lr: float,
    momentum: float,
    weight_decay: float,
    beta1: float,
    beta2: float,
    eps: float,
    amsgrad: bool = False,
) -> Optimizer:
    return _ADAM(
        params,
        lr=lr,
        betas=(beta1, beta2),
        eps=eps,
        weight_decay=weight_decay,
        amsgrad=amsgrad,
        foreach=False,
    )


def _amsgrad(
    params: Iterable[torch.Tensor], lr: float, momentum: float, weight_decay: float, **betas
) -> Optimizer:
    # AMSGrad (Reddi et al. 2018): the denominator uses the running maximum of the second
    # moments, so the effective step never grows; COMP-AMS builds on it.
    return _adam(params, lr, momentum, weight_decay, amsgrad=True, **betas)


def _qgm(
    params: Iterable[torch.Tensor], lr: float, momentum: float, weight_decay: float, mu: float | None = None
) -> Optimizer:
    # --momentum is β of the local step; the buffer's own decay μ defaults to β, as in the paper
    return _QGM(params, lr=lr, beta=momentum, mu=momentum if mu is None else mu, weight_decay=weight_decay)


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": _sgd,
    "adam": _adam,
    "amsgrad": _amsgrad,
    "qgm": _qgm,
}
"""Builders by name; each takes ``(params, lr, momentum, weight_decay, **spec values)``."""


def make_optimizer(
    spec: OptimizerChoice | str,
    params: Iterable[torch.Tensor],
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
) -> Optimizer:
    """Build the local optimizer ``spec``: ``sgd``, ``adam``, ``amsgrad`` or ``qgm``, with parameters.

    ``spec`` is the run's parsed choice (a spec string is read here, for scripts and tests).
    ``adam`` and ``amsgrad`` take ``beta1``, ``beta2`` and ``eps`` in the spec
    (``amsgrad:beta1=0.9,beta2=0.99,eps=1e-8``; torch's defaults otherwise).
    ``qgm`` is SGD with quasi-global momentum (:mod:`fedgossip.local.quasi_global`): ``momentum``
    is its β, and ``qgm:mu=M`` the buffer's decay (β by default).
    ``momentum`` applies to ``sgd`` and ``qgm`` only; Adam's first-moment decay is ``beta1``,
    so a nonzero momentum with ``adam``/``amsgrad`` is refused rather than
    silently ignored. ``lr = 0`` is allowed (it leaves the parameters unchanged,
    which tests of pure gossip rely on). Every problem is reported at once.
    """
    problems = []
    name, values = None, {}
    try:
        choice = parse_optimizer(spec) if isinstance(spec, str) else spec
        name, values = choice.name, choice.values
    except ConfigError as exc:
        problems.append(str(exc))
    if not (math.isfinite(lr) and lr >= 0):
        problems.append(f"the learning rate must be a finite number >= 0, got {lr}")
    if not 0 <= momentum < 1:
        problems.append(f"momentum must be in [0, 1), got {momentum}")
    elif momentum and name in ("adam", "amsgrad"):
        problems.append(f"momentum applies to sgd only ({name} uses beta1); drop --momentum")
    if not (math.isfinite(weight_decay) and weight_decay >= 0):
        problems.append(f"weight decay must be a finite number >= 0, got {weight_decay}")
    if problems:
        raise ConfigError("; ".join(problems))
    return OPTIMIZERS[name](
        params, lr=float(lr), momentum=float(momentum), weight_decay=float(weight_decay), **values
    )


class Schedule(Protocol):
    """What the local loop needs of a schedule: advance one step, and save/restore its state."""

    def step(self) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


class _Constant:
    """Factor 1 at every step. A class, not a lambda, so LambdaLR can save it in its state_dict."""

    def __call__(self, step: int) -> float:
        return 1.0


class _Cosine:
    """Factor ½(1 + cos(π·t/T)) from 1 at t = 0 to 0 at t = T (Loshchilov & Hutter 2017, no restarts)."""

    def __init__(self, total_steps: int):
        self.total_steps = total_steps

    def __call__(self, step: int) -> float:
        # closed form, not torch's recursive CosineAnnealingLR, so lr = 0 and resuming from
        # a state_dict need no special cases; held at 0 after T steps
        progress = min(step, self.total_steps) / self.total_steps
        return 0.5 * (1.0 + math.cos(math.pi * progress))


SCHEDULES: dict[str, Callable[[int], Callable[[int], float]]] = {
    "constant": lambda total_steps: _Constant(),
    "cosine": _Cosine,
}
"""Learning-rate factor builders by name; each takes the total number of steps."""


def make_lr_schedule(name: str, optimizer: Optimizer, total_steps: int) -> LambdaLR:
    """Build the schedule called ``name`` (``constant`` or ``cosine``) over ``total_steps`` local steps.

    Call ``step()`` once after every ``optimizer.step()``. ``cosine`` anneals every
    parameter group's learning rate from its initial value to exactly 0 after
    ``total_steps`` steps and holds it there.
    """
    problems = []
    if name not in SCHEDULES:
        problems.append(f"unknown learning-rate schedule {name!r}; known: {', '.join(SCHEDULES)}")
    if isinstance(total_steps, bool) or not isinstance(total_steps, numbers.Integral) or total_steps < 1:
        problems.append(f"the schedule needs a total number of steps >= 1, got {total_steps!r}")
    if problems:
        raise ConfigError("; ".join(problems))
    return LambdaLR(optimizer, SCHEDULES[name](int(total_steps)))
