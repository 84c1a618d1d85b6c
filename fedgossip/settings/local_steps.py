"""How many local steps a node takes between two interactions (``--local-steps``).

``--local-steps H`` takes exactly H steps every time. ``--local-steps geometric:mean=H``
draws the count afresh each time from the geometric distribution on 1, 2, ... with
mean H, as in asynchronous SwarmSGD (Nadiradze et al., 2021, "Asynchronous
decentralized SGD with quantized and local updates"), where a node's local step
count between interactions is random.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from fedgossip.errors import ConfigError
from fedgossip.specs import Param, bind, parse_spec

__all__ = ["LocalSteps", "FixedSteps", "GeometricSteps", "MAX_LOCAL_STEPS", "parse_local_steps"]

# Local steps per round at most: a round keeps one float64 loss per step (8 MB at this bound), and a
# million steps between two exchanges is no longer decentralized training.
MAX_LOCAL_STEPS = 1_000_000

_EXPECTED = f"local-steps must be a positive integer or geometric:mean=H (1 <= H <= {MAX_LOCAL_STEPS:,})"

_GEOMETRIC_PARAMS = (Param("mean", float, help="mean number of local steps", ge=1, le=MAX_LOCAL_STEPS),)


class LocalSteps(ABC):
    """The number of local steps a node takes before its next interaction."""

    @property
    @abstractmethod
    def mean(self) -> float:
        """Return the expected number of steps."""

    @property
    @abstractmethod
    def fixed(self) -> int | None:
        """Return the number of steps if it never changes, ``None`` if it is drawn."""

    @property
    @abstractmethod
    def spec(self) -> str:
        """Return the canonical spec, which :func:`parse_local_steps` reads back."""

    @abstractmethod
    def draw(self, rng: np.random.Generator) -> int:
        """Return the number of steps to take now.

        ``rng`` belongs to the caller; seed it from the run seed and the rank, so nodes
        draw independent counts (they are meant to differ across ranks).
        """


@dataclass(frozen=True)
class FixedSteps(LocalSteps):
    """Exactly ``steps`` local steps every time."""

    steps: int

    def __post_init__(self) -> None:
        if (
            isinstance(self.steps, bool)
            or not isinstance(self.steps, int)
            or not 1 <= self.steps <= MAX_LOCAL_STEPS
        ):
            raise ConfigError(f"{_EXPECTED}, got {self.steps!r}")

    @property
    def mean(self) -> float:
        return float(self.steps)

    @property
    def fixed(self) -> int:
        return self.steps

    @property
    def spec(self) -> str:
        return str(self.steps)

    def draw(self, rng: np.random.Generator) -> int:
        return self.steps  # leaves rng untouched


@dataclass(frozen=True)
class GeometricSteps(LocalSteps):
    """A geometric number of local steps: P(k) = (1 − p)^(k−1)·p for k = 1, 2, ..., p = 1/mean."""

    mean_steps: float

    def __post_init__(self) -> None:
        # `not 1 <= mean` also refuses NaN
        if not 1 <= self.mean_steps <= MAX_LOCAL_STEPS or not math.isfinite(self.mean_steps):
            raise ConfigError(f"{_EXPECTED}, got mean={self.mean_steps!r}")

    @property
    def mean(self) -> float:
        return float(self.mean_steps)

    @property
    def fixed(self) -> None:
        return None

    @property
    def spec(self) -> str:
        mean = float(self.mean_steps)
        return f"geometric:mean={int(mean) if mean.is_integer() else mean!r}"

    def draw(self, rng: np.random.Generator) -> int:
        # numpy's geometric counts trials up to the first success: support 1, 2, ..., mean 1/p
        return int(rng.geometric(1.0 / self.mean_steps))


def parse_local_steps(value: int | str) -> LocalSteps:
    """Read ``--local-steps``: an int, a digit string such as ``"10"``, or ``"geometric:mean=H"``."""
    if isinstance(value, bool):
        raise ConfigError(f"{_EXPECTED}, got {value!r}")
    if isinstance(value, int):
        return FixedSteps(value)
    text = value.strip()
    if text.isascii() and text.isdigit():
        return FixedSteps(int(text))
    try:
        parsed = parse_spec(text)
    except ConfigError:
        raise ConfigError(f"{_EXPECTED}, got {value!r}") from None
    if parsed.name != "geometric":
        raise ConfigError(f"{_EXPECTED}, got {value!r}")
    try:
        mean = bind(parsed, _GEOMETRIC_PARAMS)["mean"]
    except ConfigError as exc:
        raise ConfigError(f"{_EXPECTED}; {exc}") from None
    return GeometricSteps(mean)
