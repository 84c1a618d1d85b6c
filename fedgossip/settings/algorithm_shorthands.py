"""Options that set one parameter of the algorithm: ``--gamma 0.5`` is ``--algorithm dpsgd:gamma=0.5``.

An algorithm owns its settings as declared parameters of its spec. A few of them
also have an option of their own, kept as a documented shorthand; the value is
moved into the algorithm's spec here, where the config is built, so nothing
downstream reads the option. Whether the chosen algorithm has that parameter is
known only to the algorithms' registry, which asks :func:`misplaced_shorthands`
how to say so when it does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fedgossip.errors import ConfigError
from fedgossip.specs import Param, Spec

__all__ = ["Shorthand", "SHORTHANDS", "with_shorthands", "misplaced_shorthands"]


@dataclass(frozen=True)
class Shorthand:
    """An option that sets one parameter of the algorithm's spec."""

    option: str  # as typed on the command line; a TOML file uses it without the dashes
    field: str  # the TrainConfig field it fills; None there: not given
    param: str  # the algorithm's parameter it sets


SHORTHANDS = (
    Shorthand("--gamma", "gamma", "gamma"),
    Shorthand("--client-fraction", "client_fraction", "client_fraction"),
)


def with_shorthands(spec: Spec, config: Any) -> Spec:
    """Return the algorithm ``spec`` with the parameters that shorthand options of ``config`` set.

    A value given both ways must agree (``--gamma 0.5`` with ``dpsgd:gamma=0.5`` is fine);
    a disagreement is a ``ConfigError`` naming both. Values of the wrong type are left
    out: the config reports them itself.
    """
    args = dict(spec.args)
    problems = []
    for shorthand in SHORTHANDS:
        value = getattr(config, shorthand.field)
        if not _is_number(value):  # None: not given
            continue
        written = args.get(shorthand.param)
        if written is None:
            args[shorthand.param] = str(value)
        elif _as_number(written) not in (None, float(value)):  # not a number: its parameter check says so
            problems.append(
                f"{shorthand.option} {value} and --algorithm {spec} set {shorthand.param} to different "
                f"values; give it once"
            )
    if problems:
        raise ConfigError("; ".join(problems))
    return Spec(spec.name, args)


def misplaced_shorthands(spec: Spec, declared: Mapping[str, tuple[Param, ...]]) -> list[str]:
    """Say, for each shorthand parameter in ``spec`` that its algorithm lacks, which algorithms have it.

    ``declared`` holds every installed algorithm's parameters by name; an algorithm
    not in it is left to the registry, which names the known ones.
    """
    if spec.name not in declared:
        return []
    own = {param.name for param in declared[spec.name]}
    problems = []
    for shorthand in SHORTHANDS:
        if shorthand.param not in spec.args or shorthand.param in own:
            continue
        owners = {
            name: param
            for name, params in declared.items()
            for param in params
            if param.name == shorthand.param
        }
        where = " and ".join(
            f"{name} ({param.help})" if param.help else name for name, param in owners.items()
        )
        problems.append(
            f"{shorthand.option} applies to {where or 'no installed algorithm'}; "
            f"{spec.name} has no such setting"
        )
    return problems


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
