"""Turn ``--filter``, ``--share-data`` and ``--plugin`` into the plugins of a run."""

from __future__ import annotations

from typing import Any

from fedgossip.errors import ConfigError
from fedgossip.plugins.base import PLUGINS, TrainingPlugin

__all__ = ["plugin_specs", "build_plugins"]

_SHARE_DATA = "share-data"


def plugin_specs(config: Any) -> list[tuple[str, str]]:
    """Return ``(option, spec)`` of every plugin the config asks for, in the order they hook in.

    ``--share-data`` takes only the parameters (``budget=32,bits=4``), since there is
    one sharing plugin; its name is added here. The filter comes after the
    sharing, so it scores the shared samples too.
    """
    specs = []
    if config.share_data != "none":
        text = config.share_data.strip()
        head = text.split(":", 1)[0]
        specs.append(("--share-data", f"{_SHARE_DATA}:{text}" if "=" in head else text))
    if config.filter != "none":
        specs.append(("--filter", config.filter.strip()))
    specs += [("--plugin", spec.strip()) for spec in config.plugin]
    return specs


def build_plugins(config: Any, algorithm: Any, privacy: Any) -> list[TrainingPlugin]:
    """Create every plugin the config asks for and let each refuse what it cannot run with."""
    plugins: list[TrainingPlugin] = []
    for option, spec in plugin_specs(config):
        try:
            plugin = PLUGINS.create(spec)
        except ConfigError as exc:  # say which option it came from: --share-data takes no plugin name
            raise ConfigError(f"{option} {spec}: {exc}") from None
        expected = {"--filter": "filter", "--share-data": "share-data"}.get(option)
        if expected is not None and plugin.kind != expected:
            raise ConfigError(
                f"{option} {spec}: {plugin.name} is a {plugin.kind} plugin, not a {expected}; "
                f"`fedgossip plugins plugins` lists them by kind"
            )
        if any(type(other) is type(plugin) for other in plugins):
            raise ConfigError(
                f"{option} {spec}: the {plugin.name} plugin is already in this run; give it once"
            )
        if plugin.synchronous_only and config.asynchronous:
            raise ConfigError(
                f"{option} {spec}: {plugin.name} hooks into synchronous rounds; drop --async or the plugin"
            )
        if privacy is not None and plugin.shares_raw_data:
            raise ConfigError(
                f"{option} {spec}: {plugin.name} sends (quantized) raw samples to neighbours, which no "
                f"differential-privacy guarantee survives; drop --dp {privacy.name} or the plugin"
            )
        plugin.check(algorithm, config, privacy)
        plugins.append(plugin)
    return plugins
