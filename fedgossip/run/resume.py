"""``fedgossip train --resume RUN``: rebuild the run's config and refuse what would not be the same run.

A resumed run continues the same run directory from its last complete
checkpoint. It must be *the same run*: same settings (the ones saved in
run.json), same world size, same partition files. Anything else would make the
restored state meaningless, so each difference is named and refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from fedgossip.errors import ConfigError
from fedgossip.records.run import read_run_json
from fedgossip.settings.config import TrainConfig

__all__ = ["resume_config", "partition_fingerprint", "check_same_run", "RESUMABLE_STATUSES"]

# A running run may be alive (the guardian marks a dead one failed): two jobs must never share a directory.
RESUMABLE_STATUSES = ("failed", "preempted")
# Settings a resumed run may change: they do not enter the state that is restored.
_MAY_CHANGE = {
    "checkpoint_every",
    "device",
    "out",
    "name",
    "stall_timeout",
    "on_failure",
}  # how, not what, it runs
_FIELDS = {f.name for f in fields(TrainConfig)}


def partition_fingerprint(files: dict[str, str]) -> str:
    """Return one SHA-256 over a partition's file hashes (from partition.json), to recognise it later."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def resume_config(run_dir: Path, given: dict[str, Any], world_size: int | None = None) -> TrainConfig:
    """Return the config ``run_dir`` was started with, plus the few ``given`` settings a resume may change.

    Any other option is refused rather than compared: the saved specs are canonical
    (``qsgd:bits=4,block=...``), so comparing them with what a user typed would call
    equal settings different. ``out`` and ``name`` come from ``run_dir``, so the run
    continues in place.
    """
    record = read_run_json(run_dir)
    status = record.get("status")
    if status not in RESUMABLE_STATUSES:
        hint = {
            "completed": "it already completed",
            "budget-exhausted": "its privacy budget is spent",
            "running": "it is still marked running (if its job is dead, wait a moment for its guardian)",
        }.get(status, f"its status is {status!r}")
        raise ConfigError(f"cannot resume {run_dir}: {hint}; only failed or preempted runs resume")
    if world_size is not None and record.get("world_size") != world_size:
        # before anything else: the partition check would otherwise report a puzzling shard count
        check_same_run(record, world_size, None, "")
    saved = {key: value for key, value in (record.get("config") or {}).items() if key in _FIELDS}
    if isinstance(saved.get("plugin"), list):
        saved["plugin"] = tuple(saved["plugin"])
    if saved.get("client_fraction") == 1.0:
        # run.json of earlier versions saved the old field default of every run (not given: None now);
        # a fraction that was really given is in the saved algorithm spec too (fedavg:client_fraction=...)
        saved["client_fraction"] = None
    refused = sorted(f"--{key.replace('_', '-')}" for key in given if key not in _MAY_CHANGE)
    if refused:
        raise ConfigError(
            f"--resume continues {run_dir} with the settings it was started with (see its run.json); "
            f"drop {', '.join(refused)}, or start a new run. Only --checkpoint-every and --device may change"
        )
    overrides = {key: value for key, value in given.items() if key in _MAY_CHANGE - {"out", "name"}}
    overrides.update(out=str(Path(run_dir).parent), name=Path(run_dir).name)
    return TrainConfig(**{**saved, **overrides})


def check_same_run(record: dict[str, Any], world_size: int, fingerprint: str | None, data_dir: str) -> None:
    """Refuse a resume on another world size or partition than the run started with, naming the difference.

    ``fingerprint=None`` checks the world size only.
    """
    problems = []
    if record.get("world_size") != world_size:
        problems.append(
            f"it ran on {record.get('world_size')} ranks, this job has {world_size}; "
            f"start it with mpirun -n {record.get('world_size')}"
        )
    saved = (record.get("partition") or {}).get("fingerprint")
    if fingerprint is not None and saved is not None and saved != fingerprint:
        problems.append(
            f"the partition {data_dir} is not the one it trained on (its files changed since); "
            "restore that partition or start a new run"
        )
    if problems:
        raise ConfigError("cannot resume this run: " + "; ".join(problems))
