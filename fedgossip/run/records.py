"""The run directory as the engine opens it: run.json at the start, reopened to resume.

Only rank 0 writes; every other rank learns the path from it (under ``agree``, so
a failure to write stops every rank with the same message).
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import mpi4py
import numpy as np
import torch
from mpi4py import MPI

from fedgossip import __version__
from fedgossip.comm.collective import agree
from fedgossip.comm.json_buffers import gather_json
from fedgossip.errors import ConfigError, DataError
from fedgossip.plugins.base import TrainingPlugin
from fedgossip.privacy.base import PrivacyMechanism
from fedgossip.records import (
    CHECKPOINTS,
    create_run_dir,
    default_run_name,
    read_run_json,
    update_run_status,
    write_run_json,
)
from fedgossip.records.checkpoint import LATEST_NAME, latest_checkpoint
from fedgossip.records.guardian import Guardian, start_guardian
from fedgossip.run.model_record import check_same_model_file, model_file_record
from fedgossip.run.plan import RunPlan
from fedgossip.run.resume import check_same_run, partition_fingerprint
from fedgossip.topology.stats import topology_stats

__all__ = ["start_records", "reopen_records", "canonical_config"]


def start_records(plan: RunPlan, comm: MPI.Intracomm, counts: np.ndarray) -> tuple[Path, Guardian | None]:
    """Create the run directory and run.json on rank 0; return its path on every rank.

    ``counts`` are every node's training samples (0: none), for the local steps --local-epochs makes.
    Also returned: the run's guardian, on rank 0 (None elsewhere, or where it cannot run).
    """
    processes = _rank_processes(comm)
    config = plan.config
    guardian = None

    def create() -> str:
        nonlocal guardian
        now = datetime.now(timezone.utc)
        name = config.name or default_run_name(plan.algorithm.name, plan.data_dir.name, now)
        run_dir = create_run_dir(Path(config.out), name)
        write_run_json(run_dir, _run_record(plan, [host for host, _ in processes], name, now, counts))
        guardian = _guard(run_dir, processes)  # records a failure even if every rank is killed
        return str(run_dir)

    return Path(agree(comm, create, root_only=True)), guardian


def reopen_records(run_dir: Path, plan: RunPlan, comm: MPI.Intracomm) -> tuple[Path, dict, Guardian | None]:
    """Reopen a run to resume on rank 0; return its path and last complete checkpoint on every rank.

    The checkpoint comes back as plain data (round, evaluations, wall_s, world_size,
    hashes), the same on every rank; the guardian as :func:`start_records` returns it.
    """
    processes = _rank_processes(comm)
    guardian = None

    def reopen() -> tuple[str, dict]:
        nonlocal guardian
        record = read_run_json(run_dir)
        fingerprint = partition_fingerprint(plan.manifest.files)
        check_same_run(record, comm.Get_size(), fingerprint, str(plan.data_dir))
        check_same_model_file(record, plan.model)
        info = latest_checkpoint(run_dir)
        if info is None:
            raise ConfigError(
                f"{run_dir} has no complete checkpoint to resume from (it stopped before the first one); "
                "start a new run, with --checkpoint-every K to make them"
            )
        if info.world_size != comm.Get_size():  # run.json said this job's size: latest.json was edited
            raise DataError(
                f"{run_dir / CHECKPOINTS / LATEST_NAME} says {info.world_size} ranks wrote the checkpoint "
                f"of round {info.round}, but the run ran on {comm.Get_size()}; the checkpoint record is "
                "damaged: start a new run"
            )
        resumed = [
            *record.get("resumed", []),
            {"at": datetime.now(timezone.utc).isoformat(), "round": info.round},
        ]
        guardian = _guard(run_dir, processes)  # first: a kill right after the status change is recorded
        update_run_status(run_dir, "running", resumed=resumed, preempted_round=None)
        return str(run_dir), dataclasses.asdict(info)

    path, info = agree(comm, reopen, root_only=True)
    return Path(path), info, guardian


def _rank_processes(comm: MPI.Intracomm) -> list[tuple[str, int]]:
    """Return every rank's host name and process id, by rank, on rank 0 (empty elsewhere)."""
    gathered = gather_json(comm, [MPI.Get_processor_name(), os.getpid()], root=0)
    return [(str(host), int(pid)) for host, pid in gathered or []]


def _guard(run_dir: Path, processes: list[tuple[str, int]]) -> Guardian | None:
    """Start rank 0's guardian and name it the ranks it can watch: those on rank 0's host."""
    here = processes[0][0]
    here_ranks = {rank: pid for rank, (host, pid) in enumerate(processes) if host == here}
    return start_guardian(run_dir, ranks=here_ranks)


def canonical_config(plan: RunPlan) -> dict[str, Any]:
    """Return the config as it really ran: every spec in the canonical form that parses back to it."""
    config = plan.config
    return {
        **config.to_dict(),
        "model": plan.model.spec,
        "algorithm": plan.algorithm.spec,
        "compressor": plan.compressor.spec,
        "topology": plan.topology.name,
        "optimizer": plan.optimizer.spec,
        "local_steps": None if plan.local_steps is None else plan.local_steps.spec,
        "slowdown": plan.slowdown.spec,
        "link": "none" if plan.link is None else plan.link.spec,
        "availability": plan.config.specs.availability.spec,
        "dp": plan.privacy.spec if plan.privacy is not None else "none",
        **_plugin_config(plan.plugins),
        "data": str(plan.data_dir),
        "nodes": plan.nodes,  # resolved: a resumed run hosts as many nodes, whatever the partition says
    }


def _availability_record(plan: RunPlan) -> dict[str, Any]:
    """Return the --availability spec and the fraction of node-rounds it leaves online (1.0: always)."""
    schedule = plan.availability
    return {
        "spec": plan.config.specs.availability.spec,
        "mean_online_fraction": 1.0 if schedule is None else round(schedule.mean_online_fraction(), 6),
    }


def _consensus_step(plan: RunPlan) -> float | None:
    """Return the γ CHOCO-gossip uses: the algorithm's gamma, else the compressor's (None: no CHOCO)."""
    return plan.algorithm.consensus_step_for(plan.compressor)


def _privacy_record(mechanism: PrivacyMechanism | None) -> dict | None:
    if mechanism is None:
        return None
    return {
        "mechanism": mechanism.name,
        "level": mechanism.level,
        "clip": mechanism.clip,
        "noise": mechanism.noise,
    }


def _plugin_config(plugins: tuple[TrainingPlugin, ...]) -> dict:
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


def _local_steps_record(plan: RunPlan, counts: np.ndarray) -> dict[str, Any]:
    """Return the local steps a training node takes per round as the run starts, whatever set them.

    The config keeps what was given (``local_steps`` is None under --local-epochs, so that
    the pair parses back); this says what that meant: ``drawn`` counts (geometric) have
    no maximum, and an epoch is as many steps as batches of the node's shard.
    """
    steps, epochs = plan.local_steps, plan.config.local_epochs
    if steps is not None:
        fixed = steps.fixed
        low = 1 if fixed is None else fixed
        return {"mean": steps.mean, "min": low, "max": fixed, "drawn": fixed is None, "epochs": None}
    batch = plan.config.batch_size
    per_node = [epochs * math.ceil(int(count) / batch) for count in counts if count > 0]
    return {
        "mean": float(np.mean(per_node)),
        "min": min(per_node),
        "max": max(per_node),
        "drawn": False,
        "epochs": epochs,  # a filter that hides samples (--filter) shortens later epochs
    }


def _run_record(plan: RunPlan, hosts: list[str], name: str, now: datetime, counts: np.ndarray) -> dict:
    manifest = plan.manifest
    return {
        "format_version": 1,
        "name": name,
        "status": "running",
        "error": None,
        "failed_round": None,
        "started_at": now.isoformat(),
        "ended_at": None,
        "config": canonical_config(plan),
        "model_file": model_file_record(plan.model),  # a user model: its file's SHA-256, for --resume
        "privacy": _privacy_record(plan.privacy),
        "plugins": [
            {"name": p.name, "kind": p.kind, "spec": p.spec, "metrics": list(p.metrics)} for p in plan.plugins
        ],
        "local_steps": _local_steps_record(plan, counts),  # per round, as they ran
        "consensus_step": _consensus_step(plan),  # CHOCO-gossip's γ as used; None: no CHOCO
        "attackers": list(plan.attackers),  # left out of the accuracy figures; [] in an honest run
        "availability": _availability_record(plan),
        "versions": {
            "fedgossip": __version__,
            "torch": torch.__version__,
            "mpi4py": mpi4py.__version__,
            "mpi_library": MPI.Get_library_version().splitlines()[0].strip(),
            "python": platform.python_version(),
        },
        "world_size": plan.world_size,
        # devices of the run and the processes hosting them: rank r hosts nodes placement[r] ..
        # placement[r + 1] - 1 (the last entry is the node count)
        "nodes": plan.nodes,
        "ranks": plan.world_size,
        "placement": plan.placement.record(),
        "hosts": sorted(set(hosts)),
        "topology": topology_stats(plan.topology),
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
