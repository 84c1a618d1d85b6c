"""The run's plan: every plugin and spec resolved once, on every rank alike, before anything trains.

Each step runs under :func:`~fedgossip.comm.collective.agree`, so a bad
partition, spec or topology stops all ranks with one message instead of
leaving some of them waiting in MPI for a peer that already exited. What the
plan holds is typed: consumers take these objects and never parse a spec.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from mpi4py import MPI

from fedgossip.algorithms.base import ALGORITHMS, Algorithm
from fedgossip.algorithms.catch_up import exact_packet_bytes
from fedgossip.comm.collective import agree
from fedgossip.comm.placement import Placement
from fedgossip.compress.base import COMPRESSORS, Compressor
from fedgossip.compress.wire import HEADER_SIZE
from fedgossip.data.manifest import Manifest
from fedgossip.data.shards import Partition
from fedgossip.errors import ConfigError
from fedgossip.local.models.base import ModelFactory
from fedgossip.local.models.user import UserModel, resolve_model
from fedgossip.plugins.base import TrainingPlugin
from fedgossip.plugins.resolve import build_plugins, check_plugin_placement
from fedgossip.privacy.base import PRIVACY, PrivacyMechanism
from fedgossip.run.availability_plan import plan_availability
from fedgossip.run.byzantine_plan import Byzantine, plan_byzantine
from fedgossip.run.default_data import default_partition
from fedgossip.run.failure_plan import check_survivable
from fedgossip.run.model_record import check_same_code_as_root
from fedgossip.settings.config import TrainConfig
from fedgossip.settings.link_spec import Link
from fedgossip.settings.local_steps import LocalSteps
from fedgossip.settings.optimizer_spec import OptimizerChoice
from fedgossip.settings.slowdown_spec import Slowdown
from fedgossip.specs import Spec
from fedgossip.topology.availability import AvailabilitySchedule
from fedgossip.topology.base import Topology, make_topology

__all__ = ["RunPlan", "plan_run"]


@dataclass(frozen=True)
class RunPlan:
    """What every rank agreed on before training: the settings, typed, and the plugins they name."""

    config: TrainConfig
    world_size: int
    placement: Placement  # which rank hosts which node
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
    byzantine: Byzantine | None = None  # --attack, --attackers, --robust; None: honest, plain averaging
    availability: AvailabilitySchedule | None = None  # --availability; None: every node online, always

    @property
    def attackers(self) -> tuple[int, ...]:
        """Return the attacking nodes (none in an honest run)."""
        return () if self.byzantine is None else self.byzantine.attackers

    @property
    def nodes(self) -> int:
        return self.placement.nodes

    @property
    def compressor_max_packet(self) -> int:
        """Return the largest framed packet of a model under the compressor, for every node alike."""
        return HEADER_SIZE + self.compressor.nbytes(self.model_size)

    @property
    def network_max_packet(self) -> int:
        """Return the largest packet a node may receive: a model under the compressor, or uncompressed
        where CHOCO-gossip catches a returning node up with exact copies (--availability)."""
        if self.availability is None or self.compressor.lossless:
            return self.compressor_max_packet
        return max(self.compressor_max_packet, exact_packet_bytes(self.model_size))

    @cached_property
    def model_size(self) -> int:
        """Return the number of parameters of the run's model."""
        manifest = self.manifest
        return self.model.parameter_count(tuple(manifest.input_shape), len(manifest.classes))

    def slowdown_of(self, node: int) -> float:
        """Return node ``node``'s compute slowdown factor (1: full speed), the same on every rank."""
        return float(self._slowdown_factors[node])

    @cached_property
    def _slowdown_factors(self):
        return self.slowdown.factors(self.nodes, self.config.seed)


def plan_run(config: TrainConfig, comm: MPI.Intracomm) -> RunPlan:
    """Resolve the plugins, the partition and the graph; raise the same error on every rank."""
    size = comm.Get_size()
    specs = config.specs
    if config.nodes is not None:
        agree(comm, lambda: Placement(config.nodes, size))  # --nodes below the ranks: before any work
    algorithm = agree(comm, lambda: ALGORITHMS.create(specs.algorithm))
    compressor = agree(comm, lambda: COMPRESSORS.create(specs.compressor))
    model = agree(comm, lambda: resolve_model(specs.model))
    if size > 1 and isinstance(model, UserModel):  # every rank imported its own host's copy of the file
        root_sha256 = agree(comm, lambda: model.sha256, root_only=True)
        agree(comm, lambda: check_same_code_as_root(model, root_sha256))
    privacy = None if specs.dp is None else agree(comm, lambda: _privacy(specs.dp, algorithm))
    plugins = agree(comm, lambda: build_plugins(config, algorithm, privacy))
    agree(comm, lambda: check_survivable(config, algorithm, tuple(plugins)))  # before any data is made
    if config.nodes is not None or config.data is None:
        agree(comm, lambda: _check_node_count(algorithm, config.nodes, size))
    if config.data is None:
        nodes = size if config.nodes is None else config.nodes
        data_dir = Path(
            agree(comm, lambda: str(default_partition(algorithm.shards_needed(nodes))), root_only=True)
        )
    else:
        data_dir = Path(config.data)
    manifest, placement = agree(comm, lambda: _place(data_dir, algorithm, config.nodes, size))
    nodes = placement.nodes
    agree(comm, lambda: _check_model_fits(model, manifest, placement))
    agree(comm, lambda: _check_mode(algorithm, config, placement, plugins))
    # Some algorithms have their own graph (fedavg a star) whatever --topology says; record what really runs.
    graph = algorithm.graph or specs.topology
    graph_seed = config.seed if config.topology_seed is None else config.topology_seed
    topology = agree(comm, lambda: make_topology(graph, nodes, graph_seed))
    byzantine = agree(comm, lambda: plan_byzantine(config, algorithm, topology))
    availability = agree(comm, lambda: plan_availability(config, algorithm, compressor, nodes))
    return RunPlan(
        config=config,
        world_size=size,
        placement=placement,
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
        byzantine=byzantine,
        availability=availability,
    )


def _check_node_count(algorithm: Algorithm, nodes: int | None, ranks: int) -> None:
    """Refuse fewer nodes than the algorithm needs (fedavg: a server and a client), saying how to get more.

    ``nodes`` is --nodes (None: one node per rank).
    """
    least = 2 if algorithm.server is not None else 1
    count = ranks if nodes is None else nodes
    if count >= least:
        return
    what = "a server and at least one client" if algorithm.server is not None else "at least one node"
    if nodes is None:
        given = f"{ranks} rank{'s were' if ranks > 1 else ' was'} started with one node each"
        fix = (
            f"start {least} ranks (mpiexec -n {least}) or give --nodes {least} or more "
            "(several nodes share a rank)"
        )
    else:
        given = f"--nodes {nodes} gives {nodes}"
        fix = f"give --nodes {least} or more"
    raise ConfigError(f"{algorithm.name} needs {what}, {least} nodes, but {given}; {fix}")


def _check_mode(
    algorithm: Algorithm, config: TrainConfig, placement: Placement, plugins: list[TrainingPlugin]
) -> None:
    """Refuse settings the algorithm or this placement cannot run with."""
    if config.asynchronous and not algorithm.supports_async:
        raise ConfigError(f"--async applies to swarm only; {algorithm.name} runs in synchronous rounds")
    algorithm.check_config(config)
    config.specs.slowdown.factors(placement.nodes, config.seed)  # e.g. a slowed node beyond the run
    check_plugin_placement(plugins, placement.nodes, placement.ranks)


# Bytes a node holds per model parameter at the least: the float32 model and its float32 gradient.
_BYTES_PER_PARAMETER = 2 * 4


def _check_model_fits(model: ModelFactory, manifest: Manifest, placement: Placement) -> None:
    """Refuse a model whose nodes on one rank could not fit in this host's memory, before building any."""
    count = model.parameter_count(tuple(manifest.input_shape), len(manifest.classes))
    hosted = max(len(placement.nodes_of(rank)) for rank in range(placement.ranks))
    need = count * _BYTES_PER_PARAMETER * hosted
    memory = _host_memory()
    if memory is not None and need > memory:
        on_rank = f"{hosted} nodes on a rank need" if hosted > 1 else "a node needs"
        raise ConfigError(
            f"--model {model.spec} has {count:,} parameters: {on_rank} at least {_gib(need)} "
            f"(model and gradient in float32), but this host has {_gib(memory)} of memory; "
            "choose a smaller model" + (" or start more ranks" if hosted > 1 else "")
        )


def _host_memory() -> int | None:
    """Return this host's physical memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(count: int) -> str:
    return f"{count / 2**30:,.1f} GiB"


def _privacy(spec: Spec, algorithm: Algorithm) -> PrivacyMechanism:
    """Build the --dp mechanism; refuse one the algorithm's messages would bypass."""
    mechanism = PRIVACY.create(spec)
    if mechanism.level == "node" and algorithm.exchanges_gradients:
        raise ConfigError(
            f"--dp {mechanism.name} privatizes each round's model update, but {algorithm.name} sends a "
            "gradient at every step, before any update exists; use --dp dp-sgd with it"
        )
    return mechanism


def _place(data_dir: Path, algorithm: Algorithm, nodes: int | None, ranks: int) -> tuple[Manifest, Placement]:
    """Return the partition's manifest and the placement of ``nodes`` (None: the partition's) on the ranks."""
    manifest = Partition(data_dir).manifest
    server = algorithm.server is not None
    of_partition = manifest.nodes + server
    if nodes is None:
        nodes = max(of_partition, 1)
    elif algorithm.shards_needed(nodes) != manifest.nodes:
        needs = " (node 0 is the server and holds no shard)" if server else ""
        raise ConfigError(
            f"--nodes {nodes} of {algorithm.name} need {algorithm.shards_needed(nodes)} shards{needs}, "
            f"but {data_dir} has {manifest.nodes}; give --nodes {of_partition} "
            f"or make a partition with --nodes {algorithm.shards_needed(nodes)}"
        )
    if nodes < ranks:
        raise ConfigError(
            f"{data_dir} has {manifest.nodes} shards, enough for {of_partition} nodes of {algorithm.name}, "
            f"but {ranks} ranks were started and every rank hosts at least one node; start at most "
            f"{of_partition} ranks or make a partition with --nodes {algorithm.shards_needed(ranks)}"
        )
    return manifest, Placement(nodes, ranks)
