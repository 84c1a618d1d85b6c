"""The catalogue of plugin families: each family's name and where its registry lives.

Registries are imported only when asked for: the algorithms pull in torch and
mpi4py, which ``fedgossip plugins compressors`` has no use for.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from types import MappingProxyType
from typing import Any

from fedgossip.errors import ConfigError
from fedgossip.registry import Registry
from fedgossip.specs import format_spec

__all__ = ["FAMILIES", "registry_of", "describe_family", "plugin_choices"]

FAMILIES: Mapping[str, str] = MappingProxyType(
    {
        "datasets": "fedgossip.data.sources.base:SOURCES",
        "partitioners": "fedgossip.data.partition.base:PARTITIONERS",
        "topologies": "fedgossip.topology.base:TOPOLOGIES",
        "compressors": "fedgossip.compress.base:COMPRESSORS",
        "algorithms": "fedgossip.algorithms.base:ALGORITHMS",
        "privacy": "fedgossip.privacy.base:PRIVACY",
        "attacks": "fedgossip.byzantine.attacks:ATTACKS",
        "aggregators": "fedgossip.byzantine.aggregators:AGGREGATORS",
        "models": "fedgossip.local.models.base:MODELS",
        "plugins": "fedgossip.plugins.base:PLUGINS",
    }
)
"""Family name → ``module:ATTRIBUTE`` of its registry, in the order a listing shows them."""


def registry_of(family: str) -> Registry:
    """Return the registry of ``family`` (e.g. ``"compressors"``), importing its module now."""
    try:
        location = FAMILIES[family]
    except KeyError:
        raise ConfigError(f"unknown plugin family {family!r}; known: {', '.join(FAMILIES)}") from None
    module, _, attribute = location.partition(":")
    return getattr(import_module(module), attribute)


def describe_family(family: str) -> dict[str, Any]:
    """Return ``family`` as plain data: its entry-point group, its plugins, and its broken names."""
    registry = registry_of(family)
    return {"group": registry.group, "plugins": registry.describe(), "problems": registry.problems()}


def plugin_choices(family: str) -> list[str]:
    """Return each plugin of ``family`` with its parameters' defaults: ``shards (classes_per_node=2)``.

    A parameter without a default shows ``…``. Written for help text, which wraps at spaces.
    """
    choices = []
    for name, plugin in registry_of(family).available().items():
        defaults = [
            format_spec("", {p.name: "…" if p.required or p.default is None else p.default})[1:]
            for p in plugin.params
        ]
        choices.append(f"{name} ({', '.join(defaults)})" if defaults else name)
    return choices
