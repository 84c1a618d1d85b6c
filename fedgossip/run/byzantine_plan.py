"""The run's faulty neighbours, resolved before anything is written: who attacks, with what, against what.

Every check here raises one ``ConfigError`` (under ``agree``, alike on every rank):
an attack or aggregator the algorithm cannot carry, an aggregator that cannot
combine a node's neighbourhood, or more attackers than it is set to tolerate.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedgossip.algorithms.base import Algorithm
from fedgossip.byzantine.aggregators import AGGREGATORS, Aggregator, Krum, TrimmedMean
from fedgossip.byzantine.attacks import ATTACKS, Attack
from fedgossip.errors import ConfigError
from fedgossip.settings.config import TrainConfig
from fedgossip.topology.base import Topology

__all__ = ["Byzantine", "plan_byzantine"]


@dataclass(frozen=True)
class Byzantine:
    """The attack and its nodes (none: every node honest) and the aggregator every honest node uses."""

    aggregator: Aggregator
    attack: Attack | None = None
    attackers: tuple[int, ...] = ()

    @property
    def active(self) -> bool:
        """Whether anything differs from an honest run with plain averaging."""
        return self.attack is not None or not self.aggregator.is_mean


def plan_byzantine(config: TrainConfig, algorithm: Algorithm, topology: Topology) -> Byzantine:
    """Build --attack, --attackers and --robust for ``algorithm`` on ``topology``; refuse what cannot run."""
    specs = config.specs
    aggregator = AGGREGATORS.create(specs.robust or "mean")
    attack = None if specs.attack is None else ATTACKS.create(specs.attack)
    nodes = topology.num_nodes
    attackers = (
        () if specs.attackers is None else specs.attackers.resolve(nodes, config.seed, algorithm.server)
    )
    plan = Byzantine(aggregator, attack, attackers)
    if not plan.active:
        return plan
    place = algorithm.robust_place
    asked = " and ".join(
        option
        for option, given in (("--attack", attack is not None), ("--robust", not aggregator.is_mean))
        if given
    )
    if place is None or (config.asynchronous and place == "pair"):
        mode = f"{algorithm.name} --async" if config.asynchronous else algorithm.name
        raise ConfigError(
            f"{asked} cannot be carried by {mode}: faulty neighbours are emulated in synchronous "
            "dpsgd (CHOCO too), swarm and fedavg"
        )
    if place not in aggregator.places:
        where = {"pair": "one partner per round", "server": "a server", "gossip": "a neighbourhood"}[place]
        raise ConfigError(
            f"--robust {aggregator.name} cannot stand where {algorithm.name} combines ({where}); "
            f"use one of {', '.join(_fitting(place))}"
        )
    _check_tolerance(aggregator, algorithm, topology, attackers, config, place)
    return plan


def _fitting(place: str) -> list[str]:
    return [name for name, kind in AGGREGATORS.available().items() if place in kind.places]


def _check_tolerance(
    aggregator: Aggregator,
    algorithm: Algorithm,
    topology: Topology,
    attackers: tuple[int, ...],
    config: TrainConfig,
    place: str,
) -> None:
    bad = set(attackers)
    if place == "server":
        clients = topology.num_nodes - 1
        fraction = getattr(algorithm, "client_fraction", 1.0)
        chosen = max(1, round(fraction * clients))
        problem = aggregator.tolerance_problem(chosen)
        if problem is None and isinstance(aggregator, Krum) and len(bad) > aggregator.f:
            problem = (
                f"{aggregator.name}:f={aggregator.f} tolerates {aggregator.f} faulty client(s), and "
                f"--attackers names {len(bad)}; raise f"
            )
        if problem:
            raise ConfigError(f"--robust {aggregator.spec or aggregator.name}: {problem}")
        return
    for node in range(topology.num_nodes):
        if node in bad:
            continue
        neighbours = topology.neighbors(node)
        vectors = 2 if place == "pair" else len(neighbours) + 1
        problem = aggregator.tolerance_problem(vectors)
        faulty = sum(j in bad for j in neighbours)
        if problem is None and isinstance(aggregator, TrimmedMean) and faulty > aggregator.b:
            problem = (
                f"node {node} has {faulty} attacking neighbours, more than the b={aggregator.b} values "
                "trimmed at each end; raise b or choose other --attackers"
            )
        if problem:
            raise ConfigError(f"--robust {aggregator.spec or aggregator.name} at node {node}: {problem}")
