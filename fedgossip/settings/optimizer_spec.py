"""Optimizer specs (``amsgrad:beta2=0.99``) checked without importing torch.

The run config parses ``--optimizer`` once, before anything heavy is loaded;
:mod:`fedgossip.local.optim` builds the optimizer from the resulting
:class:`OptimizerChoice`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fedgossip.errors import ConfigError
from fedgossip.specs import Param, bind, format_spec, parse_spec

__all__ = ["OPTIMIZER_PARAMS", "OptimizerChoice", "parse_optimizer"]

_ADAM_PARAMS = (
    Param("beta1", float, 0.9, "decay of the first moment (the running mean of gradients)", ge=0, lt=1),
    Param("beta2", float, 0.999, "decay of the second moment (the running mean of squares)", ge=0, lt=1),
    Param("eps", float, 1e-8, "added to the denominator", gt=0),
)

_QGM_PARAMS = (
    Param(
        "mu",
        float,
        None,
        "decay of the quasi-global buffer per local step, by default --momentum",
        ge=0,
        lt=1,
    ),
)

OPTIMIZER_PARAMS: dict[str, tuple[Param, ...]] = {
    "sgd": (),
    "adam": _ADAM_PARAMS,
    "amsgrad": _ADAM_PARAMS,
    "qgm": _QGM_PARAMS,  # SGD with quasi-global momentum (Lin et al. 2021)
}
"""The optimizers by name, with what each one's spec accepts."""


@dataclass(frozen=True)
class OptimizerChoice:
    """A local optimizer by name, with its checked spec values (betas, eps)."""

    name: str
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> str:
        """Return the canonical spec, e.g. ``amsgrad:beta1=0.9,beta2=0.99,eps=1e-08``."""
        return format_spec(self.name, self.values)


def parse_optimizer(spec: str) -> OptimizerChoice:
    """Read an optimizer spec such as ``adam:beta2=0.99`` into its name and checked values."""
    parsed = parse_spec(spec)
    if parsed.name not in OPTIMIZER_PARAMS:
        raise ConfigError(f"unknown optimizer {parsed.name!r}; known: {', '.join(OPTIMIZER_PARAMS)}")
    return OptimizerChoice(parsed.name, bind(parsed, OPTIMIZER_PARAMS[parsed.name]))
