"""Optimizer specs (``amsgrad:beta2=0.99``) checked without importing torch.

The run config validates ``--optimizer`` on every rank before anything heavy is
loaded; :mod:`fedgossip.local.optim` builds the optimizer from the same values.
"""

from __future__ import annotations

from typing import Any

from fedgossip.errors import ConfigError
from fedgossip.specs import Param, bind, parse_spec

__all__ = ["OPTIMIZER_PARAMS", "parse_optimizer"]

_ADAM_PARAMS = (
    Param("beta1", float, 0.9, "decay of the first moment (the running mean of gradients)", ge=0, lt=1),
    Param("beta2", float, 0.999, "decay of the second moment (the running mean of squares)", ge=0, lt=1),
    Param("eps", float, 1e-8, "added to the denominator", gt=0),
)

OPTIMIZER_PARAMS: dict[str, tuple[Param, ...]] = {"sgd": (), "adam": _ADAM_PARAMS, "amsgrad": _ADAM_PARAMS}
"""The optimizers by name, with what each one's spec accepts."""


def parse_optimizer(spec: str) -> tuple[str, dict[str, Any]]:
    """Split an optimizer spec such as ``adam:beta2=0.99`` into its name and checked values."""
    parsed = parse_spec(spec)
    if parsed.name not in OPTIMIZER_PARAMS:
        raise ConfigError(f"unknown optimizer {parsed.name!r}; known: {', '.join(OPTIMIZER_PARAMS)}")
    return parsed.name, bind(parsed, OPTIMIZER_PARAMS[parsed.name])
