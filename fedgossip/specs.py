"""Plugin specs: ``"name:key=value,key=value"``, parsed and checked against declared params.

Every plugin (dataset source, partitioner, compressor, ...) declares its parameters
as a tuple of :class:`Param`. A user writes a spec such as
``dirichlet:alpha=0.1,min_size=10``; :func:`parse_spec` splits it and
:func:`bind` converts and validates the values, reporting every problem at once.

A value may itself contain commas (``balance=0.8,1.2``): a piece without ``=``
continues the previous value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fedgossip.errors import ConfigError

__all__ = ["REQUIRED", "Param", "Spec", "parse_spec", "bind", "build_kind", "format_spec", "parse_bool"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""Default of a parameter the user must give."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(text: str) -> bool:
    """Read ``true/false/yes/no/on/off/1/0`` (any case)."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected true or false")


@dataclass(frozen=True)
class Param:
    """One declared parameter of a plugin.

    ``type`` is ``int``, ``float``, ``str``, ``bool`` or any callable that turns
    the text into a value and raises ``ValueError`` with a short reason.
    Bounds are checked after conversion; ``gt``/``lt`` are strict. A ``default``
    of ``None`` makes the parameter optional with no value (the plugin picks one).
    """

    name: str
    type: Callable[[str], Any]
    default: Any = REQUIRED
    help: str = ""
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[str, ...] | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def describe_range(self) -> str:
        """Say in words which values are allowed, e.g. ``> 0`` or ``one of a, b``."""
        parts = []
        if self.choices:
            parts.append("one of " + ", ".join(self.choices))
        for symbol, bound in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt)):
            if bound is not None:
                parts.append(f"{symbol} {_number(bound)}")
        return " and ".join(parts)

    def convert(self, text: str) -> Any:
        """Turn ``text`` into a checked value or raise ``ValueError`` saying why."""
        value = _convert(self.type, text)
        problem = self._range_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    def _range_problem(self, value: Any) -> str | None:
        if self.choices is not None and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}"
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        failed = (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
            or (self.lt is not None and value >= self.lt)
        )
        return f"must be {self.describe_range()}" if failed else None


def _convert(kind: Callable[[str], Any], text: str) -> Any:
    if kind is bool:
        return parse_bool(text)
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected an integer") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError("expected a number") from None
    return kind(text)


def _number(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


@dataclass(frozen=True)
class Spec:
    """A parsed but not yet validated spec: the plugin name and raw ``key=value`` texts."""

    name: str
    args: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return format_spec(self.name, self.args)


def parse_spec(text: str) -> Spec:
    """Split ``"name:key=value,..."`` into a :class:`Spec`; only the syntax is checked here."""
    text = text.strip()
    name, _, rest = text.partition(":")
    name = name.strip()
    if not name:
        raise ConfigError(f"empty plugin name in spec {text!r}; write it as name:key=value,key=value")
    args: dict[str, str] = {}
    last_key: str | None = None
    for piece in rest.split(",") if rest.strip() else []:
        key, eq, value = piece.partition("=")
        if eq:
            key = key.strip()
            if not key:
                raise ConfigError(f"missing parameter name before '=' in spec {text!r}")
            if key in args:
                raise ConfigError(f"parameter {key!r} given twice in spec {text!r}")
            args[key] = value.strip()
            last_key = key
        elif last_key is not None:
            args[last_key] += "," + piece.strip()
        else:
            raise ConfigError(f"expected key=value after '{name}:' in spec {text!r}, got {piece!r}")
    return Spec(name, args)


def bind(spec: Spec, params: tuple[Param, ...]) -> dict[str, Any]:
    """Convert and check ``spec.args`` against ``params``; report every problem at once."""
    known = {p.name: p for p in params}
    problems = []
    for key in spec.args:
        if key not in known:
            allowed = ", ".join(known) if known else "none"
            problems.append(f"unknown parameter {key!r} (parameters of {spec.name}: {allowed})")
    values: dict[str, Any] = {}
    for param in params:
        if param.name not in spec.args:
            if param.required:
                problems.append(f"missing required parameter {param.name!r} ({param.help or param.name})")
            else:
                values[param.name] = param.default
            continue
        try:
            values[param.name] = param.convert(spec.args[param.name])
        except ValueError as exc:
            problems.append(f"{param.name}={spec.args[param.name]!r}: {exc}")
    if problems:
        raise ConfigError(f"invalid spec {str(spec)!r}: " + "; ".join(problems))
    return values


def build_kind(spec: str, kinds: Mapping[str, Any], what: str, accepted: str, text: str | None = None) -> Any:
    """Build ``kinds[name](**values)`` from ``spec`` (parsed as ``text`` if given), its values bound to
    the kind's ``params``; an unknown kind or a bad value is one ``ConfigError`` naming ``what``,
    ``spec`` and the ``accepted`` forms."""
    try:
        parsed = parse_spec(spec if text is None else text)
        kind = kinds.get(parsed.name)
        if kind is None:
            raise ConfigError(f"unknown kind {parsed.name!r}")
        values = bind(parsed, kind.params)
    except ConfigError as exc:
        raise ConfigError(f"{what} {spec!r}: {exc}; accepted forms: {accepted}") from None
    return kind(**values)


def format_spec(name: str, values: Mapping[str, Any]) -> str:
    """Write ``name`` and ``values`` back as a spec string (the canonical form in manifests).

    A ``None`` value is an optional parameter left out (its default is ``None``), so it is left out here too.
    """
    given = {key: value for key, value in values.items() if value is not None}
    if not given:
        return name
    body = ",".join(f"{key}={_format_value(value)}" for key, value in given.items())
    return f"{name}:{body}"


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(_format_value(v) for v in value)
    return str(value)
