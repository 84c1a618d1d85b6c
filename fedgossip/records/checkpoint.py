"""Checkpoints of a run: one file per rank and round, and the commit record that makes them count.

Layout (DESIGN §6)::

    results/<run>/checkpoints/
      round-000010/rank-00000.pt   the state of rank 0 after round 10
      round-000010/rank-00001.pt   the state of rank 1, written by rank 1
      latest.json                  the commit record, written by rank 0 alone

Every rank writes its file of round r (a temporary file, fsynced and renamed),
rank 0 gathers their SHA-256 and only then writes ``latest.json``, which names
round r and every file's hash. Resuming trusts ``latest.json`` alone: a crash
while ranks write round r+K leaves round r, in its own directory, untouched,
and a file that changed after its commit is caught by its hash. Rounds older
than the committed one are deleted once the commit is on disk.

Files hold tensors, numpy arrays and plain data only, and are read back with
``torch.load(weights_only=True)``, which builds no arbitrary object: a
checkpoint is data, never code.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import math
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedgossip.bounded_read import FileProblem, memory_bytes, read_bounded
from fedgossip.errors import DataError, FedGossipError
from fedgossip.records.jsonfile import read_json, write_json_atomic
from fedgossip.records.run import CHECKPOINTS, read_run_json, write_run_json

__all__ = [
    "CHECKPOINT_FORMAT_VERSION",
    "LATEST_NAME",
    "CheckpointError",
    "CheckpointInfo",
    "pack_state",
    "unpack_state",
    "checkpoint_path",
    "write_rank_checkpoint",
    "commit_checkpoint",
    "latest_checkpoint",
    "read_rank_checkpoint",
    "check_writable",
]

CHECKPOINT_FORMAT_VERSION = 1
LATEST_NAME = "latest.json"
_ROUND_DIR = re.compile(r"round-(\d+)")
_RANK_FILE = re.compile(r"rank-(\d+)\.pt")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# How a packed numpy array is marked; a state's own dicts may not use this key.
_ARRAY = "__ndarray__"
# Leaves weights_only loads as they were saved (ints of any size: numpy's PCG64 state has 128-bit ones).
_PLAIN = (type(None), bool, int, float, complex, str, bytes)
_FIXES = {
    errno.ENOSPC: "free space on that disk, or start the run with another --out",
    errno.EDQUOT: "free space within your disk quota, or start the run with another --out",
    errno.EROFS: "that disk is read-only: start the run with another --out",
    errno.EACCES: "make the directory writable for you, or start the run with another --out",
    errno.EPERM: "make the directory writable for you, or start the run with another --out",
}


class CheckpointError(FedGossipError):
    """A checkpoint cannot be written: the disk is full, read-only or not ours."""


@dataclass(frozen=True)
class CheckpointInfo:
    """The last committed checkpoint, as ``latest.json`` records it."""

    round: int  # the round after which every rank saved its state
    evaluations: int  # rows of metrics.h5 then: a resumed run drops the rows after them
    wall_s: float  # training wall time then: a resumed run's clock carries on from it
    world_size: int  # ranks that wrote it; a run resumes with the same number
    hashes: tuple[str, ...]  # SHA-256 of each rank's file, by rank
    written_at: str  # local ISO time of the commit


def pack_state(obj: Any) -> Any:
    """Return ``obj`` in a form ``torch.load(weights_only=True)`` reads back; refuse anything else.

    Numpy arrays become ``{"__ndarray__": tensor}`` (a copy, in native byte order),
    numpy scalars Python scalars, tensors detached CPU tensors, any dict a plain
    dict (keys ``str`` or ``int``). Lists, tuples and plain scalars stay as they are;
    tuples come back as tuples. Anything else is a ``TypeError`` naming its key path,
    so that no arbitrary object, and no code, gets into a checkpoint.
    """
    return _pack(obj, "state")


def _pack(value: Any, where: str) -> Any:
    if type(value) in _PLAIN:  # exactly: a subclass (an IntEnum) would pickle its class
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        return {_ARRAY: _array_tensor(value, where)}
    if isinstance(value, np.generic) and type(value.item()) in _PLAIN:
        return value.item()
    if isinstance(value, dict):
        keys = [_key(key, where) for key in value]
        return {key: _pack(item, f"{where}[{key!r}]") for key, item in zip(keys, value.values(), strict=True)}
    if type(value) in (list, tuple):
        return type(value)(_pack(item, f"{where}[{index}]") for index, item in enumerate(value))
    raise TypeError(
        f"cannot save {where} in a checkpoint: a {type(value).__name__} is not a tensor, numpy array, "
        "dict, list, tuple or plain scalar; save its state_dict() or plain data instead"
    )


def _key(key: Any, where: str) -> str | int:
    if isinstance(key, (np.integer, np.str_)):
        key = key.item()
    if type(key) not in (str, int) or key == _ARRAY:
        raise TypeError(
            f"cannot save {where} in a checkpoint: its key {key!r} must be a str or int other than {_ARRAY!r}"
        )
    return key


def _array_tensor(array: np.ndarray, where: str) -> torch.Tensor:
    if array.dtype.kind in "biufc":
        # A copy in native byte order: torch refuses other orders, and the caller's array stays its own.
        native = np.array(array, dtype=array.dtype.newbyteorder("="), order="C", copy=True)
        with contextlib.suppress(TypeError):
            return torch.from_numpy(native)
    raise TypeError(
        f"cannot save {where} in a checkpoint: numpy arrays of dtype {array.dtype} have no tensor type; "
        "only bool, integer, float and complex arrays can be saved"
    )


def unpack_state(obj: Any) -> Any:
    """Undo :func:`pack_state`: marked arrays become numpy arrays again, everything else stays.

    Dicts come back as plain dicts (an ``OrderedDict`` of ``state_dict()`` too) and
    numpy scalars as Python scalars; a malformed array mark is a ``ValueError``.
    """
    return _unpack(obj, "state")


def _unpack(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        if _ARRAY not in value:
            return {key: _unpack(item, f"{where}[{key!r}]") for key, item in value.items()}
        if len(value) != 1 or not isinstance(value[_ARRAY], torch.Tensor):
            raise ValueError(f"{where} is marked as a numpy array but does not hold one tensor alone")
        return value[_ARRAY].numpy()
    if type(value) in (list, tuple):
        return type(value)(_unpack(item, f"{where}[{index}]") for index, item in enumerate(value))
    if type(value) in _PLAIN or isinstance(value, torch.Tensor):
        return value
    raise TypeError(f"{where} is a {type(value).__name__}, which pack_state never writes")


def checkpoint_path(run_dir: Path, round: int, rank: int) -> Path:
    """Return ``run_dir/checkpoints/round-RRRRRR/rank-NNNNN.pt``."""
    return Path(run_dir) / CHECKPOINTS / f"round-{round:06d}" / f"rank-{rank:05d}.pt"


def write_rank_checkpoint(run_dir: Path, round: int, rank: int, state: dict[str, Any]) -> str:
    """Write this rank's ``state`` after ``round`` and return the SHA-256 of the file.

    The file appears whole or not at all: it is written beside its place, fsynced
    and renamed. A failure to write (disk full, read-only, permissions) removes
    the temporary file and is a ``CheckpointError``; the committed checkpoint is
    never touched, since it lies in the directory of another round.
    """
    if not isinstance(state, dict):
        raise TypeError(f"a rank's checkpoint state must be a dict, got {type(state).__name__}")
    if not (_natural(round) and _natural(rank)):
        raise ValueError(f"round and rank must be non-negative integers, got {round!r} and {rank!r}")
    # Packed first: a state that cannot be saved fails before any file is touched.
    record = {"format_version": CHECKPOINT_FORMAT_VERSION, "round": int(round), "rank": int(rank)}
    record["state"] = pack_state(state)
    path = checkpoint_path(run_dir, round, rank)
    # The rank in the name keeps ranks apart; the process id, attempts of the same rank.
    staging = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(staging, "wb") as stream:
            hashing = _HashingStream(stream)
            try:
                torch.save(record, hashing)
            except RuntimeError as exc:
                if hashing.error is None:
                    raise
                raise hashing.error from exc
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(staging, path)
        _fsync_directory(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            staging.unlink(missing_ok=True)
        raise _cannot("write the checkpoint", path, exc) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            staging.unlink(missing_ok=True)
        raise
    return hashing.sha256.hexdigest()


class _HashingStream:
    """A write-only stream that hashes what it passes on, and keeps the ``OSError`` of a failed write.

    ``torch.save`` turns an ``OSError`` raised by a write into a ``RuntimeError``
    ("unexpected pos"), losing the errno that says the disk is full.
    """

    def __init__(self, stream):
        self._stream = stream
        self.sha256 = hashlib.sha256()
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            written = self._stream.write(data)
        except OSError as exc:
            self.error = exc
            raise
        self.sha256.update(data)
        return written

    def flush(self) -> None:
        self._stream.flush()


def commit_checkpoint(
    run_dir: Path,
    round: int,
    evaluations: int,
    wall_s: float,
    hashes: Sequence[str],
    world_size: int,
) -> None:
    """Make ``round`` the checkpoint to resume from, once every rank has written its file (rank 0 only).

    ``hashes`` are what :func:`write_rank_checkpoint` returned on each rank, by rank;
    ``evaluations`` the rows of metrics.h5 at that round. Writes ``latest.json``
    atomically, records the same summary (less the hashes) under ``"checkpoint"``
    in run.json, then deletes the rounds before this one. Rounds after it (a write
    interrupted by a crash) are left: nothing reads them, and a later commit deletes them.
    """
    hashes = tuple(hashes)
    problems = _info_problems(round, evaluations, wall_s, world_size, hashes)
    if problems:
        raise ValueError("cannot commit the checkpoint: " + "; ".join(problems))
    now = datetime.now().astimezone().isoformat(timespec="seconds")
    info = CheckpointInfo(int(round), int(evaluations), float(wall_s), int(world_size), hashes, now)
    directory = Path(run_dir) / CHECKPOINTS
    try:
        write_json_atomic(
            directory / LATEST_NAME, {"format_version": CHECKPOINT_FORMAT_VERSION, **asdict(info)}
        )
        # The new latest.json must be on disk before the round it replaces is deleted.
        _fsync_directory(directory)
        record = read_run_json(run_dir)
        record["checkpoint"] = {key: value for key, value in asdict(info).items() if key != "hashes"}
        write_run_json(run_dir, record)
    except OSError as exc:
        raise _cannot("commit the checkpoint in", directory, exc) from exc
    for entry in directory.iterdir():
        match = _ROUND_DIR.fullmatch(entry.name)
        if match and int(match[1]) < info.round and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)  # best effort: the next commit deletes what is left


def _info_problems(round, evaluations, wall_s, world_size, hashes) -> list[str]:
    """Return what is wrong with the fields of a ``CheckpointInfo``, for a commit or a ``latest.json``."""
    problems = [
        f"{name} must be a non-negative integer, got {value!r}"
        for name, value in (("round", round), ("evaluations", evaluations), ("world_size", world_size))
        if not _natural(value)
    ]
    if (
        not isinstance(wall_s, (int, float, np.floating))
        or isinstance(wall_s, bool)
        or not 0 <= wall_s < math.inf
    ):
        problems.append(f"wall_s must be a non-negative number of seconds, got {wall_s!r}")
    if world_size == 0:
        problems.append("world_size must be at least 1")
    if not isinstance(hashes, (list, tuple)) or len(hashes) != world_size:
        count = f"{len(hashes)}" if isinstance(hashes, (list, tuple)) else repr(hashes)
        problems.append(f"expecting one SHA-256 per rank ({world_size!r}), got {count}")
    else:
        problems += [
            f"the hash of rank {rank} is not a SHA-256 in hex: {digest!r}"
            for rank, digest in enumerate(hashes)
            if not (isinstance(digest, str) and _SHA256.fullmatch(digest))
        ]
    return problems


def _natural(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0


def latest_checkpoint(run_dir: Path) -> CheckpointInfo | None:
    """Return the last committed checkpoint of ``run_dir``; None if it has none.

    A ``latest.json`` that cannot be trusted (unreadable, another format version,
    keys missing, values wrong) is a ``DataError`` naming it.
    """
    path = Path(run_dir) / CHECKPOINTS / LATEST_NAME
    fix = "the run cannot resume from it: start a new run"
    try:
        raw = read_json(path)
    except FileNotFoundError:
        return None
    except FileProblem as exc:  # a FIFO, a link to /dev/zero, 10,000 nested lists
        raise DataError(f"{path} {exc}; {fix}") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path} must hold a JSON object; {fix}")
    version = raw.pop("format_version", None)
    if version != CHECKPOINT_FORMAT_VERSION:
        raise DataError(
            f"{path} has checkpoint format version {version!r}, this fedgossip reads version "
            f"{CHECKPOINT_FORMAT_VERSION}; resume with the fedgossip that wrote it, or start a new run"
        )
    expected = {field.name for field in fields(CheckpointInfo)}
    problems = [f"missing key {key!r}" for key in sorted(expected - set(raw))]
    problems += [f"unexpected key {key!r}" for key in sorted(set(raw) - expected)]
    if not problems:
        problems = _info_problems(
            raw["round"], raw["evaluations"], raw["wall_s"], raw["world_size"], raw["hashes"]
        )
        if not isinstance(raw["written_at"], str):
            problems.append(f"written_at must be an ISO time string, got {raw['written_at']!r}")
    if problems:
        raise DataError(f"{path} is invalid: " + "; ".join(problems) + f"; {fix}")
    info = CheckpointInfo(**{**raw, "wall_s": float(raw["wall_s"]), "hashes": tuple(raw["hashes"])})
    # A world_size cut down together with its hashes reads as a whole record: the round's own
    # files say how many ranks wrote it.
    beyond = sorted(
        entry.name
        for entry in checkpoint_path(run_dir, info.round, 0).parent.glob("rank-*.pt")
        if (match := _RANK_FILE.fullmatch(entry.name)) and int(match[1]) >= info.world_size
    )
    if beyond:
        ranks = f"{info.world_size} rank{'s' if info.world_size != 1 else ''}"
        raise DataError(
            f"{path} says {ranks} wrote round {info.round}, but its directory also holds "
            f"{', '.join(beyond[:3])}{' ...' if len(beyond) > 3 else ''}; {fix}"
        )
    return info


def read_rank_checkpoint(run_dir: Path, info: CheckpointInfo, rank: int) -> dict[str, Any]:
    """Return the state ``rank`` saved in the checkpoint ``info``, checked against its SHA-256.

    A missing, corrupted or unreadable file is a ``DataError`` naming it.
    """
    if not _natural(rank) or rank >= info.world_size:
        raise ValueError(f"expecting rank in range({info.world_size}), got {rank!r}")
    path = checkpoint_path(run_dir, info.round, rank)
    fix = f"the run cannot resume from round {info.round}: start a new run"
    try:
        # Hashed and loaded from the same bytes: nothing can change in between. A link to /dev/zero
        # or a sparse terabyte would fill memory: a state larger than the machine's is not ours.
        data = read_bounded(path, memory_bytes() // 2)
    except FileNotFoundError:
        raise DataError(f"{path} is missing; {fix}") from None
    except FileProblem as exc:
        raise DataError(f"{path} {exc}; {fix}") from None
    if hashlib.sha256(data).hexdigest() != info.hashes[rank]:
        raise DataError(f"{path} is corrupted (its SHA-256 differs from {LATEST_NAME}); {fix}")
    try:
        record = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:
        raise DataError(f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc}); {fix}") from exc
    expected = {"format_version": CHECKPOINT_FORMAT_VERSION, "round": info.round, "rank": rank}
    if not (isinstance(record, dict) and isinstance(record.get("state"), dict)) or any(
        record.get(key) != value for key, value in expected.items()
    ):
        raise DataError(f"{path} is not the checkpoint of rank {rank} after round {info.round}; {fix}")
    try:
        return unpack_state(record["state"])
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path} is not a readable checkpoint ({exc}); {fix}") from exc


def check_writable(directory: Path, need_bytes: int) -> None:
    """Raise ``CheckpointError`` now, before training, if checkpoints cannot be written in ``directory``.

    ``need_bytes`` is the most the checkpoints will hold at once on that disk: the
    committed round and the one being written, for every rank that writes there.
    Nothing is created: where ``directory`` does not exist yet, the probe goes into
    its nearest existing parent, in which the first checkpoint will create it (a run
    that never writes one keeps no empty ``checkpoints/``).
    """
    directory = Path(directory)
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        descriptor, probe = tempfile.mkstemp(prefix=".write-test-", dir=existing)
        os.close(descriptor)
        os.unlink(probe)
        free = shutil.disk_usage(existing).free
    except OSError as exc:
        raise _cannot("write checkpoints in", directory, exc) from exc
    if free < need_bytes:
        raise CheckpointError(
            f"{directory} has {_size(free)} free, but the checkpoints need about {_size(need_bytes)}; "
            f"{_FIXES[errno.ENOSPC]}"
        )


def _cannot(what: str, path: Path, exc: OSError) -> CheckpointError:
    fix = _FIXES.get(exc.errno, "check that disk, or start the run with another --out")
    return CheckpointError(f"cannot {what} {path} ({exc.strerror or exc}); {fix}")


def _fsync_directory(directory: Path) -> None:
    """Make the renames in ``directory`` durable; a no-op where the filesystem cannot sync a directory."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(descriptor)


def _size(count: float) -> str:
    """Return a byte count for people: ``512 bytes``, ``3.2 GiB``."""
    if count < 1024:
        return f"{count:.0f} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        count /= 1024
        if count < 1024 or unit == "TiB":
            return f"{count:.1f} {unit}"
    raise AssertionError("unreachable")
