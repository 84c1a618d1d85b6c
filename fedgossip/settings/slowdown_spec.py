"""Per-rank compute slowdowns (``--slowdown``): simulated stragglers on uniform hardware.

Asynchronous SwarmSGD is about nodes that compute at different speeds. Each rank gets
a factor f >= 1 and, after every local step that took t seconds, sleeps (f − 1)·t, so
the step takes f·t. The fastest rank has f = 1: compute can be slowed down, not sped up.

The accepted specs are

- ``none`` (the default): every factor is 1;
- ``fixed:factor=F``: every rank F;
- ``lognormal:sigma=S``: rank r gets exp(S·z_r), z_r standard normal, divided by the
  smallest of them;
- ``ranks=0,5:factor=F`` (also written ``ranks:ranks=0,5,factor=F``): the listed ranks
  F, the others 1.

Factors derive from the run seed alone, so every rank computes the same vector
without a message and knows how slow its peers are.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np

from fedgossip.errors import ConfigError
from fedgossip.specs import Param, bind, build_kind, format_spec, parse_spec

__all__ = [
    "Slowdown",
    "NoSlowdown",
    "FixedSlowdown",
    "LognormalSlowdown",
    "RankSlowdown",
    "SLOWDOWNS",
    "ACCEPTED_FORMS",
    "MAX_FACTOR",
    "parse_slowdown",
]

# Keeps the slowdown draws apart from the other generators seeded from the run seed.
# It must be the same on every rank: all ranks draw the whole vector and must agree on it.
_FACTOR_STREAM = 0x736C6F77  # "slow" in ASCII

# The largest slowdown emulated: a step f times longer sleeps (f − 1)·t, and beyond this a run of minutes
# would take weeks (and an overflowing lognormal factor would not even fit a sleep's time_t).
MAX_FACTOR = 10_000.0

ACCEPTED_FORMS = "none, fixed:factor=F, lognormal:sigma=S, ranks=R1,R2,...:factor=F (1 <= F <= 10000, S > 0)"
"""The spec forms, as error messages list them."""


def _rank_list(text: str) -> tuple[int, ...]:
    """Read ``0,5`` as sorted rank numbers; a rank listed twice is refused as a likely typo."""
    pieces = [piece.strip() for piece in text.split(",")]
    if not all(piece.isascii() and piece.isdigit() for piece in pieces):
        raise ValueError("expected rank numbers >= 0 separated by commas, e.g. 0,5")
    ranks = [int(piece) for piece in pieces]
    repeated = sorted({rank for rank in ranks if ranks.count(rank) > 1})
    if repeated:
        raise ValueError(f"rank {', '.join(map(str, repeated))} listed twice")
    return tuple(sorted(ranks))


class Slowdown(ABC):
    """How many times longer each rank's local steps take than the fastest rank's."""

    name: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()

    def __post_init__(self) -> None:
        # A slowdown built in code passes the checks a parsed spec does, and its values are
        # stored as a spec would give them (ranks sorted, factors as floats), so equal
        # slowdowns have equal specs.
        for key, value in bind(parse_spec(self._full_spec()), self.params).items():
            object.__setattr__(self, key, value)

    @property
    def spec(self) -> str:
        """Return the canonical spec, which :func:`parse_slowdown` reads back to an equal slowdown."""
        return self._full_spec()

    def _full_spec(self) -> str:
        return format_spec(self.name, {f.name: getattr(self, f.name) for f in fields(self)})

    def factors(self, world_size: int, seed: int) -> np.ndarray:
        """Return every rank's factor (float64, all >= 1); the same on every rank for a seed."""
        if world_size < 1:
            raise ValueError(f"expecting world_size >= 1, got {world_size}")
        factors = self._factors(world_size, seed)
        slowest = int(np.argmax(factors))
        if not factors[slowest] <= MAX_FACTOR:  # `not <=` also refuses inf and NaN
            raise ConfigError(
                f"slowdown {self.spec!r} slows rank {slowest} down {factors[slowest]:.3g} times with "
                f"seed {seed}, beyond the {MAX_FACTOR:g} emulated; choose a smaller sigma"
            )
        return factors

    @abstractmethod
    def _factors(self, world_size: int, seed: int) -> np.ndarray: ...


@dataclass(frozen=True)
class NoSlowdown(Slowdown):
    """Every rank computes at full speed."""

    name: ClassVar[str] = "none"

    def _factors(self, world_size: int, seed: int) -> np.ndarray:
        return np.ones(world_size)


@dataclass(frozen=True)
class FixedSlowdown(Slowdown):
    """Every rank is slowed down by the same factor."""

    name: ClassVar[str] = "fixed"
    params: ClassVar[tuple[Param, ...]] = (
        Param("factor", float, help="slowdown of every rank", ge=1, le=MAX_FACTOR),
    )

    factor: float

    def _factors(self, world_size: int, seed: int) -> np.ndarray:
        return np.full(world_size, float(self.factor))


@dataclass(frozen=True)
class LognormalSlowdown(Slowdown):
    """Log-normal factors: log f_r = S·z_r − min_q S·z_q, z standard normal."""

    name: ClassVar[str] = "lognormal"
    params: ClassVar[tuple[Param, ...]] = (
        Param("sigma", float, help="standard deviation of the log factors", gt=0),
    )

    sigma: float

    def _factors(self, world_size: int, seed: int) -> np.ndarray:
        z = np.random.default_rng([seed, _FACTOR_STREAM]).standard_normal(world_size)
        log_factors = self.sigma * z
        # shifting in log space divides by the smallest factor without overflow, and gives
        # the fastest rank exp(0) = 1 exactly
        return np.exp(log_factors - log_factors.min())


@dataclass(frozen=True)
class RankSlowdown(Slowdown):
    """The listed ranks are slowed down by a factor, the others run at full speed."""

    name: ClassVar[str] = "ranks"
    params: ClassVar[tuple[Param, ...]] = (
        Param("ranks", _rank_list, help="the slowed-down ranks, e.g. 0,5"),
        Param("factor", float, help="slowdown of the listed ranks", ge=1, le=MAX_FACTOR),
    )

    ranks: tuple[int, ...]  # sorted, without repeats
    factor: float

    @property
    def spec(self) -> str:
        """Return the short form users write, ``ranks=0,5:factor=4.0``; it parses back to an equal one."""
        return f"ranks={','.join(map(str, self.ranks))}:factor={self.factor!r}"

    def _factors(self, world_size: int, seed: int) -> np.ndarray:
        outside = [rank for rank in self.ranks if rank >= world_size]
        if outside:
            named = ("rank " if len(outside) == 1 else "ranks ") + ", ".join(map(str, outside))
            raise ConfigError(
                f"slowdown {self.spec!r} names {named}, but the world has {world_size} ranks "
                f"(0 to {world_size - 1})"
            )
        factors = np.ones(world_size)
        factors[list(self.ranks)] = self.factor
        return factors


SLOWDOWNS: dict[str, type[Slowdown]] = {
    kind.name: kind for kind in (NoSlowdown, FixedSlowdown, LognormalSlowdown, RankSlowdown)
}
"""The slowdown kinds by spec name."""


def parse_slowdown(spec: str) -> Slowdown:
    """Read a ``--slowdown`` spec; every problem with it is reported in one :class:`ConfigError`."""
    return build_kind(spec, SLOWDOWNS, "slowdown", ACCEPTED_FORMS, text=_ranks_first(spec))


def _ranks_first(spec: str) -> str:
    """Rewrite the short form ``ranks=0,5:factor=4`` as the spec ``ranks:ranks=0,5,factor=4``.

    :func:`parse_spec` would take everything before the colon, ``ranks=0,5``, for the name.
    """
    head, _, rest = spec.strip().partition(":")
    key, equals, ranks = head.partition("=")
    if not equals or key.strip() != "ranks":
        return spec
    return f"ranks:ranks={ranks}" + (f",{rest}" if rest.strip() else "")
