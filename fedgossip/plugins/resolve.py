"""Turn ``--filter``, ``--share-data`` and ``--plugin`` (parsed by the config) into the plugins of a run."""

from __future__ import annotations

from typing import Any

from fedgossip.errors import ConfigError
from fedgossip.plugins.base import PLUGINS, TrainingPlugin

__all__ = ["build_plugins", "check_plugin_placement"]


def build_plugins(config: Any, algorithm: Any, privacy: Any) -> list[TrainingPlugin]:
    """Create every plugin the config asks for and let each refuse what it cannot run with."""
    plugins: list[TrainingPlugin] = []
    for option, spec in config.specs.plugins:
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


def check_plugin_placement(plugins: list[TrainingPlugin], nodes: int, ranks: int) -> None:
    """Refuse plugins that send by MPI themselves when ``nodes`` nodes share ``ranks`` ranks.

    Such a plugin (``one_node_per_rank``) addresses ranks, not nodes, so it cannot tell
    co-hosted nodes apart; the built-in ones speak through conversations instead.
    """
    if nodes <= ranks:
        return
    one_per_rank = [plugin.name for plugin in plugins if plugin.one_node_per_rank]
    if one_per_rank:
        verb = "talks" if len(one_per_rank) == 1 else "talk"
        raise ConfigError(
            f"the training-time plugin {' and '.join(one_per_rank)} {verb} to its neighbours by MPI "
            f"itself, so it runs one node per rank, but {nodes} nodes share {ranks} ranks; start "
            f"{nodes} ranks (mpiexec -n {nodes}) or leave out --nodes"
        )
