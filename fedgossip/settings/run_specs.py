"""Every spec of a run, parsed once when its ``TrainConfig`` is built, into typed objects.

Downstream code takes these objects and never parses a spec string again. Specs of
plugin families (model, algorithm, compressor, topology, --dp, training-time plugins)
become :class:`~fedgossip.specs.Spec` here, checked for syntax only; the run's plan
binds them to their plugin's declared parameters (``Registry.create``), which is the
one place a plugin's values are converted. Everything here is free of torch and MPI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fedgossip.errors import ConfigError
from fedgossip.settings.algorithm_shorthands import with_shorthands
from fedgossip.settings.attackers_spec import Attackers, parse_attackers
from fedgossip.settings.availability_spec import AlwaysAvailable, Availability, parse_availability
from fedgossip.settings.link_spec import Link, parse_link
from fedgossip.settings.local_steps import LocalSteps, parse_local_steps
from fedgossip.settings.model_spec import UserModelSpec, parse_model_spec
from fedgossip.settings.optimizer_spec import OptimizerChoice, parse_optimizer
from fedgossip.settings.slowdown_spec import Slowdown, parse_slowdown
from fedgossip.specs import Spec, parse_spec

__all__ = ["RunSpecs", "DEFAULT_LOCAL_STEPS", "read_specs", "plugin_specs"]

DEFAULT_LOCAL_STEPS = 10  # local steps per round when neither --local-steps nor --local-epochs is given

_SHARE_DATA = "share-data"  # the one data-sharing plugin: --share-data takes only its parameters


@dataclass(frozen=True)
class RunSpecs:
    """The typed form of every spec in a ``TrainConfig``."""

    local_steps: LocalSteps | None  # steps per round (fixed or drawn); None: rounds count local epochs
    slowdown: Slowdown
    link: Link | None  # None: no network emulation
    optimizer: OptimizerChoice
    model: Spec | UserModelSpec  # a registered model, or the user's own class (FILE.py:Class)
    algorithm: Spec
    compressor: Spec
    topology: Spec
    dp: Spec | None  # None: no privacy
    plugins: tuple[tuple[str, Spec], ...]  # (option it came from, spec), in the order they hook in
    attack: Spec | None = None  # None: every node honest
    attackers: Attackers | None = None  # None: no attackers
    robust: Spec | None = None  # None: mean, the algorithm's plain average
    availability: Availability = field(default_factory=AlwaysAvailable)  # who is online each round


def read_specs(config: Any) -> tuple[RunSpecs | None, list[str]]:
    """Parse every spec of ``config`` (a ``TrainConfig`` being built); return them and every problem.

    The specs are ``None`` when any problem was found. Only well-typed values are
    parsed: the config reports a value of the wrong type itself.
    """
    problems: list[str] = []

    def read(parse, value, well_typed: bool = True):
        if not well_typed:
            return None
        try:
            return parse(value)
        except ConfigError as exc:
            problems.append(str(exc))
            return None

    steps = config.local_steps
    steps_typed = isinstance(steps, (int, str)) and not isinstance(steps, bool)
    local_steps = None
    if config.local_epochs is None:
        local_steps = read(
            parse_local_steps, DEFAULT_LOCAL_STEPS if steps is None else steps, steps is None or steps_typed
        )
    elif steps_typed:
        read(parse_local_steps, steps)  # both given is reported by the config; a bad value too
    values = {
        "local_steps": local_steps,
        "slowdown": read(parse_slowdown, config.slowdown, isinstance(config.slowdown, str)),
        "link": read(parse_link, config.link, isinstance(config.link, str)),
        "availability": read(parse_availability, config.availability, isinstance(config.availability, str)),
        "optimizer": read(parse_optimizer, config.optimizer, isinstance(config.optimizer, str)),
    }
    values["model"] = read(parse_model_spec, config.model, isinstance(config.model, str))
    for name in ("algorithm", "compressor", "topology"):
        value = getattr(config, name)
        values[name] = read(parse_spec, value, isinstance(value, str))
    values["algorithm"] = read(
        lambda spec: with_shorthands(spec, config), values["algorithm"], values["algorithm"] is not None
    )
    dp = config.dp
    values["dp"] = None if dp == "none" else read(parse_spec, dp, isinstance(dp, str) and bool(dp.strip()))
    values["plugins"] = tuple(read(plugin_specs, config) or ())
    values.update(_byzantine_specs(config, read))
    if problems or any(
        values[name] is None for name in ("slowdown", "availability", "optimizer", "model", "algorithm")
    ):
        return None, problems
    if any(values[name] is None for name in ("compressor", "topology")) or (
        config.local_epochs is None and local_steps is None
    ):
        return None, problems
    return RunSpecs(**values), problems


def _byzantine_specs(config: Any, read) -> dict[str, Any]:
    """Return --attack, --attackers and --robust parsed (None: off); the config checks their types."""
    texts = {name: getattr(config, name) for name in ("attack", "attackers", "robust")}
    if not all(isinstance(text, str) and text.strip() for text in texts.values()):
        return {}
    return {
        "attack": None if texts["attack"] == "none" else read(parse_spec, texts["attack"]),
        "attackers": read(parse_attackers, texts["attackers"]),
        "robust": None if texts["robust"] == "mean" else read(parse_spec, texts["robust"]),
    }


def plugin_specs(config: Any) -> list[tuple[str, Spec]]:
    """Return ``(option, spec)`` of every training-time plugin the config asks for, in hook order.

    ``--share-data`` takes only the parameters (``budget=32,bits=4``), since there is
    one sharing plugin; its name is added here. The filter comes after the
    sharing, so it scores the shared samples too.
    """
    texts = []
    share, filtering, others = config.share_data, config.filter, config.plugin
    if not (isinstance(share, str) and isinstance(filtering, str) and isinstance(others, (tuple, list))):
        return []  # the config reports values of the wrong type
    if share != "none":
        text = share.strip()
        head = text.split(":", 1)[0]
        texts.append(("--share-data", f"{_SHARE_DATA}:{text}" if "=" in head else text))
    if filtering != "none":
        texts.append(("--filter", filtering.strip()))
    texts += [("--plugin", spec.strip()) for spec in others if isinstance(spec, str)]
    specs = []
    for option, text in texts:
        try:
            specs.append((option, parse_spec(text)))
        except ConfigError as exc:
            raise ConfigError(f"{option} {text}: {exc}") from None
    return specs
