"""The run's plan: every plugin and spec resolved once, on every rank alike, before anything trains.

Each step runs under :func:`~fedgossip.comm.collective.agree`, so a bad
partition, spec or topology stops all ranks with one message instead of
leaving some of them waiting in MPI for a peer that already exited. What the
plan holds is typed: consumers take these objects and never parse a spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mpi4py import MPI

from fedgossip.algorithms.base import ALGORITHMS, Algorithm
from fedgossip.comm.collective import agree
from fedgossip.compress.base import COMPRESSORS, Compressor
from fedgossip.data.manifest import Manifest
from fedgossip.data.shards import Partition
from fedgossip.errors import ConfigError
from fedgossip.local.models.base import MODELS, ModelFactory
from fedgossip.plugins.base import TrainingPlugin
from fedgossip.plugins.resolve import build_plugins
from fedgossip.privacy.base import PRIVACY, PrivacyMechanism
from fedgossip.run.default_data import default_partition
from fedgossip.settings.config import TrainConfig
from fedgossip.settings.link_spec import Link
from fedgossip.settings.local_steps import LocalSteps
from fedgossip.settings.optimizer_spec import OptimizerChoice
from fedgossip.settings.slowdown_spec import Slowdown
from fedgossip.specs import Spec
from fedgossip.topology.base import Topology, make_topology

__all__ = ["RunPlan", "plan_run"]


@dataclass(frozen=True)
class RunPlan:
    """What every rank agreed on before training: the settings, typed, and the plugins they name."""

    config: TrainConfig
    world_size: int
    data_dir: Path
    manifest: Manifest
    algorithm: Algorithm
    compressor: Compressor
    topology: Topology
    model: ModelFactory
    optimizer: OptimizerChoice
    local_steps: LocalSteps | None  # None: rounds count local epochs (--local-epochs)
    slowdown: Slowdown
    link: Link | None  # None: no network emulation
    privacy: PrivacyMechanism | None = None  # --dp; None: no privacy
    plugins: tuple[TrainingPlugin, ...] = ()  # --share-data, --filter, --plugin; this rank's instances

    def slowdown_of(self, rank: int) -> float:
        """Return rank ``rank``'s compute slowdown factor (1: full speed), the same on every rank."""
        return float(self.slowdown.factors(self.world_size, self.config.seed)[rank])


def plan_run(config: TrainConfig, comm: MPI.Intracomm) -> RunPlan:
    """Resolve the plugins, the partition and the graph; raise the same error on every rank."""
    size = comm.Get_size()
    specs = config.specs
    algorithm = agree(comm, lambda: ALGORITHMS.create(specs.algorithm))
    agree(comm, lambda: _check_mode(algorithm, config, size))
    compressor = agree(comm, lambda: COMPRESSORS.create(specs.compressor))
    model = agree(comm, lambda: MODELS.create(specs.model))
    privacy = None if specs.dp is None else agree(comm, lambda: _privacy(specs.dp, algorithm))
    plugins = agree(comm, lambda: build_plugins(config, algorithm, privacy))
    if config.data is None:
        data_dir = Path(
            agree(comm, lambda: str(default_partition(algorithm.shards_needed(size))), root_only=True)
        )
    else:
        data_dir = Path(config.data)
    manifest = agree(comm, lambda: _check_partition(data_dir, algorithm, size))
    # Some algorithms have their own graph (fedavg a star) whatever --topology says; record what really runs.
    graph = algorithm.graph or specs.topology
    graph_seed = config.seed if config.topology_seed is None else config.topology_seed
    topology = agree(comm, lambda: make_topology(graph, size, graph_seed))
    return RunPlan(
        config=config,
        world_size=size,
        data_dir=data_dir,
        manifest=manifest,
        algorithm=algorithm,
        compressor=compressor,
        topology=topology,
        model=model,
        optimizer=specs.optimizer,
        local_steps=specs.local_steps,
        slowdown=specs.slowdown,
        link=specs.link,
        privacy=privacy,
        plugins=tuple(plugins),
    )


def _check_mode(algorithm: Algorithm, config: TrainConfig, size: int) -> None:
    """Refuse settings the algorithm or this world size cannot run with."""
    if config.asynchronous and not algorithm.supports_async:
        raise ConfigError(f"--async applies to swarm only; {algorithm.name} runs in synchronous rounds")
    algorithm.check_config(config)
    config.specs.slowdown.factors(size, config.seed)  # e.g. a slowed rank beyond the world


def _privacy(spec: Spec, algorithm: Algorithm) -> PrivacyMechanism:
    """Build the --dp mechanism; refuse one the algorithm's messages would bypass."""
    mechanism = PRIVACY.create(spec)
    if mechanism.level == "node" and algorithm.exchanges_gradients:
        raise ConfigError(
            f"--dp {mechanism.name} privatizes each round's model update, but {algorithm.name} sends a "
            "gradient at every step, before any update exists; use --dp dp-sgd with it"
        )
    return mechanism


def _check_partition(data_dir: Path, algorithm: Algorithm, size: int) -> Manifest:
    manifest = Partition(data_dir).manifest
    needed = algorithm.shards_needed(size)
    if manifest.nodes != needed:
        server = " (rank 0 is the server and holds no shard)" if algorithm.server is not None else ""
        raise ConfigError(
            f"{data_dir} has {manifest.nodes} shards but {size} ranks of {algorithm.name} "
            f"need {needed}{server}; start {manifest.nodes + size - needed} ranks "
            f"or make a partition with --nodes {needed}"
        )
    return manifest
