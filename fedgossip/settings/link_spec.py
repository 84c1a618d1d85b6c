"""Network emulation: make every message cost ``latency + bytes / bandwidth`` of wall time.

``--link bandwidth=10Mbit,latency=20ms`` gives every rank the same emulated
network link. A message counts as delivered only once it would have crossed that
link; the receiver holds it until then (:func:`hold_until`), so the bytes an
algorithm sends show in its wall time.

The model
---------
- Each rank has its own uplink of ``bandwidth`` into a non-blocking switch
  (full bisection): ranks transmit at the same time without slowing each other.
- A rank's messages leave one after another: while its uplink carries one
  message, the next waits (:class:`Uplink`). So a round that sends to d
  neighbours costs d transmissions, and a dense topology pays for its degree as
  it would on a real network interface. (Giving every pair of ranks its own link
  would be simpler, but would make a complete graph as cheap per round as a ring.)
- ``latency`` is one-way and added once per message, after its last byte leaves:
  delivered = start + bytes/bandwidth + latency.
- Known simplification: downlinks are not modelled. A rank receives any number of
  messages at once, so fan-in (a FedAvg server hearing from many clients) is
  cheaper here than on a real network; fan-out (its broadcast) is not.
- Collectives run as rings (:meth:`Link.allreduce_time`, :meth:`Link.allgather_time`),
  whose every step keeps each uplink busy with one message, matching the model above.

Units
-----
Bandwidth is per second, with decimal prefixes (1 Mbit = 10^6 bits): ``bit``,
``kbit``, ``Mbit``, ``Gbit`` for bits and ``B``, ``kB``, ``MB``, ``GB`` for bytes
(8 bits each); a trailing ``/s`` is allowed. Latency takes ``us``, ``ms`` or ``s``.
Units ignore case (so ``10mbit``, as tc writes it, is 10 Mbit/s; ``m`` is never
milli here), except the byte sign ``B``, which must be uppercase: a lone
lowercase ``b`` (``10Mb``) is refused, because people write it for bits and for
bytes alike and the two differ eightfold. A bare number is refused for the same
reason: the unit is never guessed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from fedgossip.errors import ConfigError

__all__ = ["EXAMPLE", "Link", "parse_link"]

EXAMPLE = "bandwidth=10Mbit,latency=20ms"

_PREFIXES = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}
_BITS_PER_BYTE = 8.0
_LATENCY_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
_BANDWIDTH_FORMS = "bit, kbit, Mbit, Gbit, B, kB, MB, GB per second"
_LATENCY_FORMS = "us, ms, s"
# Canonical units for run.json, largest first; the last has scale 1, so writing in it is always exact.
_CANONICAL_BANDWIDTH = (("Gbit", 1e9), ("Mbit", 1e6), ("kbit", 1e3), ("bit", 1.0))
_CANONICAL_LATENCY = (("s", 1.0), ("ms", 1e-3), ("us", 1e-6))

_QUANTITY = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:inf|infinity|nan))\s*(.*)", re.I)


@dataclass(frozen=True)
class Link:
    """The emulated link of every rank: its bandwidth and its one-way latency."""

    bandwidth_bps: float  # bits per second; math.inf for a link that adds latency only
    latency_s: float  # one-way, added once per message

    def __post_init__(self) -> None:
        problems = []
        if not self.bandwidth_bps > 0:  # also refuses nan
            problems.append(f"bandwidth must be > 0 bit/s, got {self.bandwidth_bps}")
        if not (math.isfinite(self.latency_s) and self.latency_s >= 0):
            problems.append(f"latency must be a finite number >= 0 s, got {self.latency_s}")
        if problems:
            raise ConfigError("invalid link: " + "; ".join(problems))

    @property
    def spec(self) -> str:
        """Return the canonical ``--link`` text for run.json, e.g. ``bandwidth=10Mbit,latency=20ms``.

        It parses back to an equal :class:`Link`; bandwidth is always written in
        bits, and left out when unlimited.
        """
        parts = []
        if math.isfinite(self.bandwidth_bps):
            parts.append("bandwidth=" + _canonical(self.bandwidth_bps, _CANONICAL_BANDWIDTH))
        parts.append("latency=" + _canonical(self.latency_s, _CANONICAL_LATENCY))
        return ",".join(parts)

    def __str__(self) -> str:
        return self.spec

    def transmission(self, nbytes: int) -> float:
        """Return the seconds ``nbytes`` occupy the link: ``8 · nbytes / bandwidth``."""
        _check_bytes(nbytes)
        return _BITS_PER_BYTE * nbytes / self.bandwidth_bps

    def delay(self, nbytes: int) -> float:
        """Return the seconds from sending ``nbytes`` to their delivery on an idle link."""
        return self.latency_s + self.transmission(nbytes)

    def deliver_at(self, sent_at: float, nbytes: int) -> float:
        """Return when a message of ``nbytes`` sent at ``sent_at`` on an idle link is delivered."""
        return sent_at + self.delay(nbytes)

    def allreduce_time(self, nbytes_buffer: int, ranks: int) -> float:
        """Return the seconds a ring allreduce of an ``nbytes_buffer`` buffer over ``ranks`` ranks takes.

        Reduce-scatter then allgather, each n − 1 steps that move one n-th of
        the buffer: 2(n − 1) latencies and 2(n − 1)/n of the buffer per uplink
        (Patarasuk & Yuan 2009, the bandwidth-optimal bound).
        """
        _check_ranks(ranks)
        steps = 2 * (ranks - 1)
        return steps * self.latency_s + steps / ranks * self.transmission(nbytes_buffer)

    def allgather_time(self, nbytes_per_rank: int, ranks: int) -> float:
        """Return the seconds a ring allgather of ``nbytes_per_rank`` from each of ``ranks`` ranks takes.

        n − 1 steps, each forwarding one rank's block to the next rank.
        """
        _check_ranks(ranks)
        steps = ranks - 1
        return steps * (self.latency_s + self.transmission(nbytes_per_rank))


def parse_link(spec: str | None) -> Link | None:
    """Read a ``--link`` spec such as ``bandwidth=10Mbit,latency=20ms``.

    ``None``, ``""`` and ``none`` mean no emulation and give ``None``.
    Either key may be left out (no bandwidth: unlimited; no latency: 0), not both.
    Every problem is reported at once, in one :class:`ConfigError`.
    """
    if spec is None or spec.strip().lower() in ("", "none"):
        return None
    values: dict[str, float] = {}
    problems: list[str] = []
    seen: set[str] = set()
    # Not specs.parse_spec: there is no plugin name, and a piece without '=' is a mistake
    # here rather than the continuation of a list value.
    for piece in spec.split(","):
        key, eq, text = (part.strip() for part in piece.partition("="))
        if not piece.strip():
            problems.append("empty item between commas")
        elif not eq:
            problems.append(f"expected key=value, got {piece.strip()!r}")
        elif key not in _READERS:
            problems.append(f"unknown key {key!r} (keys: bandwidth, latency)")
        elif key in seen:
            problems.append(f"{key} given twice")
        else:
            seen.add(key)
            try:
                values[key] = _READERS[key](text)
            except ValueError as exc:
                problems.append(f"{key}={text!r}: {exc}")
    if not seen and not problems:
        problems.append("give bandwidth, latency or both")
    if problems:
        raise ConfigError(f"invalid --link {spec!r}: " + "; ".join(problems) + f"; e.g. {EXAMPLE}, or none")
    return Link(bandwidth_bps=values.get("bandwidth", math.inf), latency_s=values.get("latency", 0.0))


def _read_bandwidth(text: str) -> float:
    """Turn ``10Mbit`` or ``2MB/s`` into bits per second, or raise ``ValueError`` saying why."""
    number, unit = _split_quantity(text, _BANDWIDTH_FORMS)
    unit = unit.removesuffix("/s")
    lowered = unit.lower()
    bits: float | None = None  # stays None for a lowercase b, which could mean either
    if lowered.endswith("bit"):
        prefix, bits = unit[:-3], 1.0
    elif unit.endswith("B"):
        prefix, bits = unit[:-1], _BITS_PER_BYTE
    elif lowered.endswith("bps"):
        prefix = unit[:-3]
    elif lowered.endswith("b"):
        prefix = unit[:-1]
    else:
        prefix = "?"  # no such prefix: reported as an unknown unit
    scale = _PREFIXES.get(prefix.lower())
    if scale is None:
        raise ValueError(f"unknown unit {unit!r} (units: {_BANDWIDTH_FORMS})")
    if bits is None:
        raise ValueError(
            f"unit {unit!r} is ambiguous: write bit for bits or B for bytes ({_BANDWIDTH_FORMS})"
        )
    value = number * scale * bits
    if not (math.isfinite(value) and value > 0):
        raise ValueError("must be a finite number > 0 (leave bandwidth out for an unlimited link)")
    return value


def _read_latency(text: str) -> float:
    """Turn ``20ms`` into seconds, or raise ``ValueError`` saying why."""
    number, unit = _split_quantity(text, _LATENCY_FORMS)
    scale = _LATENCY_UNITS.get(unit.lower())
    if scale is None:
        raise ValueError(f"unknown unit {unit!r} (units: {_LATENCY_FORMS})")
    value = number * scale
    if not (math.isfinite(value) and value >= 0):
        raise ValueError("must be a finite number >= 0")
    return value


_READERS: dict[str, Callable[[str], float]] = {"bandwidth": _read_bandwidth, "latency": _read_latency}


def _split_quantity(text: str, forms: str) -> tuple[float, str]:
    if not text:
        raise ValueError(f"empty value; write a number and a unit ({forms})")
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"expected a number and a unit ({forms})")
    number, unit = match.groups()
    if not unit:
        raise ValueError(f"needs a unit ({forms})")
    return float(number), unit


def _canonical(value: float, units: tuple[tuple[str, float], ...]) -> str:
    """Write ``value`` in the largest unit it reaches, with the fewest digits that read back exactly."""
    exact = [unit for unit in units if unit[1] == 1.0]  # value / 1 reads back as itself
    for name, scale in [unit for unit in units if value >= unit[1]] + exact:
        for digits in range(1, 18):  # 17 significant digits always suffice for a float
            text = _number(float(f"{value / scale:.{digits}g}"))
            if float(text) * scale == value:  # exactly what parsing multiplies back
                return text + name
    raise AssertionError(f"unreachable: {value!r} has no exact form")


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)


def _check_bytes(nbytes: int) -> None:
    if nbytes < 0:
        raise ValueError(f"expecting nbytes >= 0, got {nbytes}")


def _check_ranks(ranks: int) -> None:
    if ranks < 1:
        raise ValueError(f"expecting ranks >= 1, got {ranks}")
