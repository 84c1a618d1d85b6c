"""The run directory and its ``run.json``: what ran, where, with which settings, and how it ended.

Layout (DESIGN §6)::

    results/<run>/
      run.json        this module
      metrics.h5      fedgossip.records.metrics
      summary.json    fedgossip.records.summary
      checkpoints/    one file per rank

Only rank 0 writes these files. ``run.json`` is rewritten whole and atomically on
every status change, so a crash at any moment leaves the last complete version.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from fedgossip.bounded_read import FileProblem
from fedgossip.errors import ConfigError, DataError
from fedgossip.records.jsonfile import read_json, write_json_atomic

__all__ = [
    "RUN_FORMAT_VERSION",
    "RUN_NAME",
    "CHECKPOINTS",
    "STATUSES",
    "TERMINAL_STATUSES",
    "create_run_dir",
    "default_run_name",
    "write_run_json",
    "update_run_status",
    "read_run_json",
]

RUN_FORMAT_VERSION = 1
RUN_NAME = "run.json"
CHECKPOINTS = "checkpoints"
STATUSES = ("running", "completed", "failed", "budget-exhausted", "preempted")
TERMINAL_STATUSES = frozenset(STATUSES) - {"running"}
# Characters a run name keeps; anything else (":" "/" " " of a spec or path) becomes "-".
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]+")


def default_run_name(algorithm: str, data_name: str, now: datetime) -> str:
    """Return ``YYYYmmdd-HHMMSS-<algorithm>-<data_name>``, sorting runs by start time.

    Characters that are awkward in a directory name (``/``, ``:``, spaces) become ``-``.
    """
    stamp = now.strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{_safe(algorithm)}-{_safe(data_name)}"


def _safe(part: str) -> str:
    return _UNSAFE.sub("-", part).strip("-.") or "run"


def create_run_dir(out: Path, name: str) -> Path:
    """Create ``out/name`` and return it; ``checkpoints/`` appears with the first checkpoint.

    A run directory is never overwritten: an existing one is a ``ConfigError``.
    """
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ConfigError(f"run name {name!r} must be one directory name, without '/'; choose another name")
    run_dir = Path(out) / name
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
        # mkdir without exist_ok is the check: no window between testing and creating.
        run_dir.mkdir()
    except FileExistsError:
        if not Path(out).is_dir():
            raise ConfigError(f"--out {out}: part of that path is a file; choose a directory") from None
        raise ConfigError(
            f"{run_dir} already exists and a run directory is never overwritten; "
            "choose another run name or move the old run away"
        ) from None
    except NotADirectoryError:
        raise ConfigError(
            f"--out {out}: part of that path is a file, not a directory; choose another --out"
        ) from None
    except OSError as exc:  # name too long, read-only file system, no permission
        raise ConfigError(
            f"cannot create the run directory {run_dir}: {exc.strerror}; choose another --out or --name"
        ) from None
    return run_dir


def write_run_json(run_dir: Path, record: dict[str, Any]) -> None:
    """Write ``record`` as ``run_dir/run.json`` atomically, stamped with the format version."""
    version = record.get("format_version", RUN_FORMAT_VERSION)
    if version != RUN_FORMAT_VERSION:
        raise ValueError(f"run.json format_version must be {RUN_FORMAT_VERSION}, got {version!r}")
    body = {k: v for k, v in record.items() if k != "format_version"}
    write_json_atomic(Path(run_dir) / RUN_NAME, {"format_version": RUN_FORMAT_VERSION, **body})


def update_run_status(
    run_dir: Path,
    status: str,
    error: str | None = None,
    failed_round: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Set the run's status (and error, failed round, any ``extra`` keys) and return the new record.

    A terminal status (anything but ``running``) also records ``ended_at``.
    ``error`` and ``failed_round`` are always replaced, so a resumed run does not
    keep the error of the attempt before.
    """
    if status not in STATUSES:
        raise ValueError(f"unknown run status {status!r}; expecting one of {', '.join(STATUSES)}")
    record = read_run_json(run_dir)
    record.update(extra)
    record.update(status=status, error=error, failed_round=failed_round)
    record["ended_at"] = _now_iso() if status in TERMINAL_STATUSES else None
    write_run_json(run_dir, record)
    return record


def _now_iso() -> str:
    """Return the local time with its UTC offset, e.g. ``2024-05-01T12:00:00+02:00``."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def read_run_json(run_dir: Path) -> dict[str, Any]:
    """Read and check ``run_dir/run.json``; every problem is a ``DataError`` saying what to do."""
    run_dir = Path(run_dir)
    path = run_dir / RUN_NAME
    if not run_dir.is_dir():
        raise DataError(
            f"{run_dir} is not a run directory (it does not exist); "
            "`fedgossip runs` lists the runs in results/"
        )
    try:
        raw = read_json(path)
    except FileNotFoundError:
        raise DataError(
            f"{path} is missing, so {run_dir} is not a run directory; "
            "`fedgossip runs` lists the runs in results/"
        ) from None
    except FileProblem as exc:  # a FIFO, a link to /dev/zero, 10,000 nested lists
        raise DataError(f"{path} {exc}; the run directory is damaged, rerun the training") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path} must hold a JSON object; the run directory is damaged, rerun the training")
    version = raw.get("format_version")
    if version != RUN_FORMAT_VERSION:
        raise DataError(
            f"{path} has run format version {version!r}, this fedgossip reads version "
            f"{RUN_FORMAT_VERSION}; read it with the fedgossip that made it"
        )
    problems = _problems(raw)
    if problems:
        raise DataError(f"{path} is invalid: " + "; ".join(problems) + "; rerun the training")
    return raw


def _problems(raw: dict[str, Any]) -> list[str]:
    problems = [f"missing key {key!r}" for key in ("name", "status") if key not in raw]
    if "status" in raw and raw["status"] not in STATUSES:
        problems.append(f"status {raw['status']!r} is not one of {', '.join(STATUSES)}")
    for key in ("config", "versions", "topology", "partition"):
        if raw.get(key) is not None and not isinstance(raw[key], dict):
            problems.append(f"{key!r} must be an object")
    return problems
