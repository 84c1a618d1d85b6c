"""The run's ``--availability``: refused where the algorithm cannot follow it, else its schedule.

Part of the plan, so a refusal or an empty round stops every rank before anything is written.
"""

from __future__ import annotations

from fedgossip.algorithms.base import Algorithm
from fedgossip.compress.base import Compressor
from fedgossip.errors import ConfigError
from fedgossip.settings.config import TrainConfig
from fedgossip.topology.availability import AvailabilitySchedule

__all__ = ["plan_availability"]


def plan_availability(
    config: TrainConfig, algorithm: Algorithm, compressor: Compressor, nodes: int
) -> AvailabilitySchedule | None:
    """Return the run's schedule (None for ``always``: every node online, today's code paths)."""
    availability = config.specs.availability
    if availability.name == "always":
        return None
    # --async needs nothing more: it is refused for algorithms without an asynchronous mode
    reason = algorithm.availability_problem(compressor)
    if reason is not None:
        raise ConfigError(
            f"--availability {availability.spec} {reason}; it is supported by dpsgd (CHOCO-gossip too), "
            "swarm (--async too), fedavg and allreduce; or use --availability always"
        )
    # The run seed, the same on every rank: every rank draws the same whole schedule.
    return AvailabilitySchedule(availability, nodes, config.rounds, config.seed, server=algorithm.server)
