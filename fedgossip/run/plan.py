"""Build everything a rank needs for a run, failing on every rank alike when anything is wrong.

Each step runs under :func:`~fedgossip.comm.collective.agree`, so a bad
partition, spec or topology stops all ranks with one message instead of
leaving some of them waiting in MPI for a peer that already exited.
"""

from __future__ import annotations

import dataclasses
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import mpi4py
import numpy as np
import torch
from mpi4py import MPI

from fedgossip import __version__
from fedgossip.algorithms.base import ALGORITHMS, Algorithm
from fedgossip.comm.collective import agree
from fedgossip.compress.base import COMPRESSORS, Compressor
from fedgossip.data.manifest import Manifest
from fedgossip.data.shards import Partition, ShardData
from fedgossip.errors import ConfigError, DataError
from fedgossip.plugins.base import TrainingPlugin
from fedgossip.plugins.resolve import build_plugins
from fedgossip.privacy.base import PRIVACY, PrivacyMechanism
from fedgossip.records import (
    create_run_dir,
    default_run_name,
    read_run_json,
    update_run_status,
    write_run_json,
)
from fedgossip.records.checkpoint import latest_checkpoint
from fedgossip.records.guardian import start_guardian
from fedgossip.run.default_data import default_partition
from fedgossip.run.resume import check_same_run, partition_fingerprint
from fedgossip.settings.config import TrainConfig
from fedgossip.settings.slowdown_spec import parse_slowdown
from fedgossip.topology.base import Topology, make_topology

__all__ = ["warm_up_compressor", "RunPlan", "plan_run", "load_local_data", "start_records", "reopen_records"]


@dataclass
class RunPlan:
    """What every rank agreed on before training."""

    data_dir: Path
    manifest: Manifest
    algorithm: Algorithm
    compressor: Compressor
    topology: Topology
    privacy: PrivacyMechanism | None = None  # --dp; None: no privacy
    plugins: list[TrainingPlugin] = field(
        default_factory=list
    )  # --share-data, --filter, --plugin; this rank's


def plan_run(config: TrainConfig, comm: MPI.Intracomm) -> RunPlan:
    """Resolve the plugins, the partition and the graph; raise the same error on every rank."""
    size = comm.Get_size()
    algorithm = agree(comm, lambda: ALGORITHMS.create(config.algorithm))
    agree(comm, lambda: _check_mode(algorithm, config, size))
    compressor = agree(comm, lambda: COMPRESSORS.create(config.compressor))
    privacy = None if config.dp == "none" else agree(comm, lambda: _privacy(config, algorithm))
    plugins = agree(comm, lambda: build_plugins(config, algorithm, privacy))
    if config.data is None:
        data_dir = Path(
            agree(comm, lambda: str(default_partition(algorithm.shards_needed(size))), root_only=True)
        )
    else:
        data_dir = Path(config.data)
    manifest = agree(comm, lambda: _check_partition(data_dir, algorithm, size))
    # Some algorithms have their own graph (fedavg a star) whatever --topology says; record what really runs.
    spec = algorithm.graph or config.topology
    graph_seed = config.seed if config.topology_seed is None else config.topology_seed
    topology = agree(comm, lambda: make_topology(spec, size, graph_seed))
    return RunPlan(data_dir, manifest, algorithm, compressor, topology, privacy, plugins)


def _check_mode(algorithm: Algorithm, config: TrainConfig, size: int) -> None:
    """Refuse settings the algorithm or this world size cannot run with."""
    if config.asynchronous and not algorithm.supports_async:
        raise ConfigError(f"--async applies to swarm only; {algorithm.name} runs in synchronous rounds")
    algorithm.check_config(config)
    parse_slowdown(config.slowdown).factors(size, config.seed)  # e.g. a slowed rank beyond the world


def _privacy(config: TrainConfig, algorithm: Algorithm) -> PrivacyMechanism:
    """Build the --dp mechanism; refuse one the algorithm's messages would bypass."""
    mechanism = PRIVACY.create(config.dp)
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


def load_local_data(plan: RunPlan, comm: MPI.Intracomm) -> tuple[ShardData | None, ShardData]:
    """Read this rank's shard (checksum verified) and the test set."""

    def read() -> tuple[ShardData | None, ShardData]:
        partition = Partition(plan.data_dir)
        shard_index = plan.algorithm.shard_of(comm.Get_rank())
        shard = None if shard_index is None else partition.read_shard(shard_index)
        if shard is not None and len(shard.y) == 0:
            raise DataError(f"shard {shard_index} of {plan.data_dir} is empty; recreate the partition")
        return shard, partition.read_test()

    return agree(comm, read)


def start_records(config: TrainConfig, plan: RunPlan, comm: MPI.Intracomm) -> Path:
    """Create the run directory and run.json on rank 0; return its path on every rank."""
    hosts = comm.gather(MPI.Get_processor_name(), root=0)

    def create() -> str:
        now = datetime.now(timezone.utc)
        name = config.name or default_run_name(plan.algorithm.name, plan.data_dir.name, now)
        run_dir = create_run_dir(Path(config.out), name)
        write_run_json(run_dir, _run_record(config, plan, comm.Get_size(), hosts, name, now))
        start_guardian(run_dir)  # records a failure even if every rank is killed
        return str(run_dir)

    return Path(agree(comm, create, root_only=True))


def reopen_records(run_dir: Path, plan: RunPlan, comm: MPI.Intracomm) -> tuple[Path, dict]:
    """Reopen a run to resume on rank 0; return its path and last complete checkpoint on every rank.

    The checkpoint comes back as plain data (round, evaluations, wall_s, world_size,
    hashes), the same on every rank.
    """

    def reopen() -> tuple[str, dict]:
        record = read_run_json(run_dir)
        fingerprint = partition_fingerprint(plan.manifest.files)
        check_same_run(record, comm.Get_size(), fingerprint, str(plan.data_dir))
        info = latest_checkpoint(run_dir)
        if info is None:
            raise ConfigError(
                f"{run_dir} has no complete checkpoint to resume from (it stopped before the first one); "
                "start a new run, with --checkpoint-every K to make them"
            )
        resumed = [
            *record.get("resumed", []),
            {"at": datetime.now(timezone.utc).isoformat(), "round": info.round},
        ]
        start_guardian(run_dir)  # first: a kill right after the status change must still be recorded
        update_run_status(run_dir, "running", resumed=resumed, preempted_round=None)
        return str(run_dir), dataclasses.asdict(info)

    path, info = agree(comm, reopen, root_only=True)
    return Path(path), info


def _consensus_step(config: TrainConfig, plan: RunPlan) -> float | None:
    """Return the γ CHOCO-gossip uses: --gamma, else the compressor's default (None: no CHOCO)."""
    if not plan.algorithm.uses_consensus_step or plan.compressor.lossless:
        return None
    return plan.compressor.consensus_step if config.gamma is None else config.gamma


def _privacy_record(mechanism: PrivacyMechanism | None) -> dict | None:
    if mechanism is None:
        return None
    return {
        "mechanism": mechanism.name,
        "level": mechanism.level,
        "clip": mechanism.clip,
        "noise": mechanism.noise,
    }


def _plugin_config(plugins: list[TrainingPlugin]) -> dict:
    """Return the config's plugin settings as the canonical specs that really ran."""
    chosen = {"filter": "none", "share_data": "none", "plugin": []}
    for plugin in plugins:
        if plugin.kind == "filter" and chosen["filter"] == "none":
            chosen["filter"] = plugin.spec
        elif plugin.kind == "share-data" and chosen["share_data"] == "none":
            chosen["share_data"] = plugin.spec
        else:
            chosen["plugin"].append(plugin.spec)
    return chosen


def _run_record(config: TrainConfig, plan: RunPlan, size: int, hosts: list[str], name: str, now) -> dict:
    manifest = plan.manifest
    return {
        "format_version": 1,
        "name": name,
        "status": "running",
        "error": None,
        "failed_round": None,
        "started_at": now.isoformat(),
        "ended_at": None,
        "config": {
            **config.to_dict(),
            "algorithm": plan.algorithm.spec,
            "compressor": plan.compressor.spec,
            "topology": plan.topology.name,
            "dp": plan.privacy.spec if plan.privacy is not None else "none",
            **_plugin_config(plan.plugins),
            "data": str(plan.data_dir),
        },
        "privacy": _privacy_record(plan.privacy),
        "plugins": [
            {"name": p.name, "kind": p.kind, "spec": p.spec, "metrics": list(p.metrics)} for p in plan.plugins
        ],
        "consensus_step": _consensus_step(config, plan),  # CHOCO-gossip's γ as used; None: no CHOCO
        "versions": {
            "fedgossip": __version__,
            "torch": torch.__version__,
            "mpi4py": mpi4py.__version__,
            "mpi_library": MPI.Get_library_version().splitlines()[0].strip(),
            "python": platform.python_version(),
        },
        "world_size": size,
        "hosts": sorted(set(hosts)),
        "topology": plan.topology.stats(),
        "partition": {
            "path": str(plan.data_dir),
            "source": manifest.source,
            "scheme": manifest.scheme,
            "nodes": manifest.nodes,
            "fingerprint": partition_fingerprint(manifest.files),  # --resume checks it is the same partition
            # dispatch may store a sample on several nodes; each node counts (and trains on) its copy
            "replication": manifest.replication,
            "stats": manifest.stats,
        },
    }


def sample_counts(shard: ShardData | None, comm: MPI.Intracomm) -> np.ndarray:
    """Return every rank's number of training samples (0 for a rank without a shard)."""
    mine = np.array([0 if shard is None else len(shard.y)], dtype=np.int64)
    counts = np.empty(comm.Get_size(), dtype=np.int64)
    comm.Allgather(mine, counts)
    return counts


def warm_up_compressor(compressor: Compressor, comm: MPI.Intracomm) -> None:
    """Run the compressor once on one rank per host first, then on every rank.

    Quantizers compile their kernels on first use (numba: seconds of CPU each)
    and cache them on disk. Sixty-four ranks compiling at once on a few cores
    would take minutes; loading what one rank compiled takes a moment.
    """
    host = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        agree(host, lambda: _exercise(compressor), root_only=True)
    finally:
        host.Free()
    _exercise(compressor)


def _exercise(compressor: Compressor) -> None:
    compressor.decode(compressor.encode(torch.linspace(-1.0, 1.0, 100)))
