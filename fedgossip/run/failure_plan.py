"""The run's ``--on-failure continue``: refused before training where a lost rank could not be survived.

Part of the plan, so every rank refuses alike before anything is written. What survives a lost
rank today (:mod:`fedgossip.run.recovery`): dpsgd (CHOCO-gossip too, with a lossy compressor),
swarm (``--async`` too, cut every ``--eval-every``), allreduce and fedavg (its clients: the server
is node 0, on rank 0, whose loss ends any run), every node honest, no training-time plugins and
no emulated availability. comp-ams (one collective over every node per step), gt and d2 are refused.
"""

from __future__ import annotations

from fedgossip.algorithms.base import Algorithm
from fedgossip.errors import ConfigError
from fedgossip.settings.config import TrainConfig

__all__ = ["check_survivable"]


def check_survivable(config: TrainConfig, algorithm: Algorithm, plugins: tuple) -> None:
    """Refuse ``--on-failure continue`` for a run that could not go on after losing a rank."""
    if config.on_failure != "continue":
        return
    reason = _reason(config, algorithm, plugins)
    if reason is not None:
        raise ConfigError(
            f"--on-failure continue {reason}; it is supported by dpsgd (CHOCO included), swarm "
            "(--async too), allreduce and fedavg; or run with --on-failure abort"
        )


def _reason(config: TrainConfig, algorithm: Algorithm, plugins: tuple) -> str | None:
    if config.asynchronous and config.checkpoint_every:
        return "with --async cannot take --checkpoint-every yet (it cuts the run at every --eval-every)"
    if not algorithm.survives_lost_nodes:
        return f"is not supported by {algorithm.name} yet"
    if config.specs.availability.name != "always":
        return "cannot be combined with --availability yet"
    if config.attack != "none" or config.robust != "mean":
        return "cannot be combined with --attack or --robust yet"
    if plugins:
        return "cannot be combined with training-time plugins (--plugin, --share-data) yet"
    return None
