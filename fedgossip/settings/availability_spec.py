"""Node availability (``--availability``): which nodes are online in each round.

Edge devices come and go. An offline node neither trains nor communicates for the round.
The accepted specs are

- ``always`` (the default): every node online every round;
- ``bernoulli:p=P``: each node online each round independently with probability P, 0 < P <= 1;
- ``markov:online=A,offline=B``: each node alternates online and offline spells whose
  lengths are geometric with means A and B rounds (A, B >= 1), starting from the chain's
  stationary law (online with probability A / (A + B));
- ``trace:path=F``: a CSV file of ``node,start,end`` rows, each saying node ``node`` is
  online in rounds ``start <= t < end`` (half-open, rounds counted from 0, like Python
  ranges: trace round 0 is the run's first round, ``round`` 1 in metrics.csv); a header
  line ``node,start,end`` is optional. A node with no row is never online.

With ``--async`` a round is an interaction window: every node's t-th interaction
(:mod:`fedgossip.run.away_windows`).

The whole schedule derives from the run seed (or the file) alone, so every rank computes
the same mask without a message and nobody waits on an absent node.
"""

from __future__ import annotations

import csv
import io
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar

import numpy as np

from fedgossip.bounded_read import FileProblem, read_bounded
from fedgossip.errors import ConfigError
from fedgossip.specs import Param, bind, build_kind, format_spec, parse_spec

__all__ = [
    "Availability",
    "AlwaysAvailable",
    "BernoulliAvailability",
    "MarkovAvailability",
    "TraceAvailability",
    "AVAILABILITIES",
    "ACCEPTED_FORMS",
    "parse_availability",
]

# Keeps the availability draws apart from the other generators seeded from the run seed.
# It must be the same on every rank: all ranks draw the whole schedule and must agree on it.
_AVAILABILITY_STREAM = 0x61766169  # "avai" in ASCII

_TRACE_MAX_BYTES = 64 * 2**20  # a trace of a million devices' spells fits; /dev/zero does not

ACCEPTED_FORMS = "always, bernoulli:p=P (0 < P <= 1), markov:online=A,offline=B (A, B >= 1), trace:path=F"
"""The spec forms, as error messages list them."""


class Availability(ABC):
    """Which nodes are online in each round; the same answer on every rank for a seed."""

    name: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()

    def __post_init__(self) -> None:
        # An availability built in code passes the checks a parsed spec does.
        for key, value in bind(parse_spec(self.spec), self.params).items():
            object.__setattr__(self, key, value)

    @property
    def spec(self) -> str:
        """Return the canonical spec, which :func:`parse_availability` reads back to an equal one."""
        return format_spec(self.name, {f.name: getattr(self, f.name) for f in fields(self)})

    def schedule(self, num_nodes: int, rounds: int, seed: int) -> np.ndarray:
        """Return the online mask, bool ``[rounds, num_nodes]``; refuse one with an empty round.

        Checked up front for the whole run, so a spec that would leave every node offline
        in round 9000 fails before any training rather than there.
        """
        if num_nodes < 1 or rounds < 0:
            raise ValueError(f"expecting num_nodes >= 1 and rounds >= 0, got {num_nodes} and {rounds}")
        mask = self._schedule(num_nodes, rounds, seed)
        empty = np.flatnonzero(~mask.any(axis=1))
        if empty.size:
            listed = ", ".join(map(str, empty[:5].tolist())) + (", ..." if empty.size > 5 else "")
            raise ConfigError(
                f"availability {self.spec!r} leaves no node online in {empty.size} of {rounds} rounds "
                f"(round {listed}) with seed {seed}; raise the online probability or fill the trace's gaps"
            )
        return mask

    @abstractmethod
    def _schedule(self, num_nodes: int, rounds: int, seed: int) -> np.ndarray: ...


@dataclass(frozen=True)
class AlwaysAvailable(Availability):
    """Every node is online in every round: today's behaviour."""

    name: ClassVar[str] = "always"

    def _schedule(self, num_nodes: int, rounds: int, seed: int) -> np.ndarray:
        return np.ones((rounds, num_nodes), dtype=bool)


@dataclass(frozen=True)
class BernoulliAvailability(Availability):
    """Each node online each round independently with probability p."""

    name: ClassVar[str] = "bernoulli"
    params: ClassVar[tuple[Param, ...]] = (
        Param("p", float, help="probability that a node is online in a round", gt=0, le=1),
    )

    p: float

    def _schedule(self, num_nodes: int, rounds: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng([seed, _AVAILABILITY_STREAM])
        return rng.random((rounds, num_nodes)) < self.p


@dataclass(frozen=True)
class MarkovAvailability(Availability):
    """A two-state Markov chain per node with mean online spell A and mean offline spell B.

    Leaving the online state has probability 1/A per round and leaving the offline state 1/B,
    so spell lengths are geometric with means A and B; the first round is drawn from the
    stationary law, so the online fraction is A / (A + B) from round 0 on.
    """

    name: ClassVar[str] = "markov"
    params: ClassVar[tuple[Param, ...]] = (
        Param("online", float, help="mean online spell, in rounds", ge=1),
        Param("offline", float, help="mean offline spell, in rounds", ge=1),
    )

    online: float
    offline: float

    def _schedule(self, num_nodes: int, rounds: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng([seed, _AVAILABILITY_STREAM])
        mask = np.zeros((rounds, num_nodes), dtype=bool)
        if rounds == 0:
            return mask
        state = rng.random(num_nodes) < self.online / (self.online + self.offline)
        mask[0] = state
        for t in range(1, rounds):
            leave = np.where(state, 1.0 / self.online, 1.0 / self.offline)
            state = state ^ (rng.random(num_nodes) < leave)
            mask[t] = state
        return mask


@dataclass(frozen=True)
class TraceAvailability(Availability):
    """Online intervals read from a CSV trace (``node,start,end``, half-open ``[start, end)``)."""

    name: ClassVar[str] = "trace"
    params: ClassVar[tuple[Param, ...]] = (Param("path", str, help="CSV file of node,start,end rows"),)

    path: str

    def _schedule(self, num_nodes: int, rounds: int, seed: int) -> np.ndarray:
        intervals = read_trace(Path(self.path))
        problems = []
        unknown = sorted({node for node, _, _ in intervals if node >= num_nodes})
        if unknown:
            problems.append(
                f"names node {', '.join(map(str, unknown[:5]))}, but the run has {num_nodes} "
                f"nodes (0 to {num_nodes - 1})"
            )
        problems += _overlaps(intervals)
        if problems:
            raise ConfigError(f"availability trace {self.path!r}: " + "; ".join(problems))
        mask = np.zeros((rounds, num_nodes), dtype=bool)
        for node, start, end in intervals:
            mask[min(start, rounds) : min(end, rounds), node] = True
        return mask


def read_trace(path: Path) -> list[tuple[int, int, int]]:
    """Read a trace's ``(node, start, end)`` rows, reporting every malformed line in one error."""
    try:
        text = read_bounded(path, _TRACE_MAX_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"availability trace {str(path)!r} does not exist; give a CSV of node,start,end"
        ) from None
    except FileProblem as exc:
        raise ConfigError(f"availability trace {str(path)!r} {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"availability trace {str(path)!r} is not UTF-8 text") from None
    intervals, problems = [], []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or (number == 1 and cells == ["node", "start", "end"]):
            continue
        if len(cells) != 3 or not all(cell.isascii() and cell.isdigit() for cell in cells):
            problems.append(f"line {number} is {','.join(row)!r}, expected three integers >= 0")
            continue
        node, start, end = map(int, cells)
        if end <= start:
            problems.append(f"line {number}: end {end} must be greater than start {start}")
            continue
        intervals.append((node, start, end))
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ConfigError(f"availability trace {str(path)!r}: {shown}")
    return intervals


def _overlaps(intervals: list[tuple[int, int, int]]) -> list[str]:
    """Name each node whose intervals overlap: a likely copy-paste error in the trace."""
    problems = []
    previous: dict[int, tuple[int, int]] = {}
    for node, start, end in sorted(intervals):
        if node in previous and start < previous[node][1]:
            first, last = previous[node]
            problems.append(f"node {node}'s intervals [{first}, {last}) and [{start}, {end}) overlap")
        previous[node] = (start, max(end, previous.get(node, (0, 0))[1]))
    return problems


AVAILABILITIES: dict[str, type[Availability]] = {
    kind.name: kind
    for kind in (AlwaysAvailable, BernoulliAvailability, MarkovAvailability, TraceAvailability)
}
"""The availability kinds by spec name."""


def parse_availability(spec: str) -> Availability:
    """Read an ``--availability`` spec; every problem with it is reported in one :class:`ConfigError`."""
    return build_kind(spec, AVAILABILITIES, "availability", ACCEPTED_FORMS)
