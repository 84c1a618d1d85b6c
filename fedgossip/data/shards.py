"""The partition directory: write it atomically, read shards back with their checksums verified.

Layout (DESIGN §6)::

    partition.json        the manifest (fedgossip.data.manifest)
    shard-00000.h5 ...    one per node: datasets x (float32), y (int64), index (int64)
    test.h5               datasets x, y
    dispatch.h5           only for ``dispatch`` partitions: the rule that routes new points

``index`` gives each sample's position in the source's training split, so a
partition can be checked against its source (every sample exactly once).

Everything is written into a hidden temporary directory beside the target and
renamed into place at the end, so a failed or interrupted run leaves nothing
behind, and ``--force`` replaces an old partition only once the new one is whole.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import h5py
import numpy as np

from fedgossip.bounded_read import file_problem
from fedgossip.data.manifest import DISPATCH_NAME, MANIFEST_NAME, TEST_NAME, Manifest, shard_name
from fedgossip.data.partition.dispatch_rule import DispatchRule
from fedgossip.data.shard_content import dataset_problem, feature_problem, whole_number_problem
from fedgossip.errors import DataError

__all__ = ["ShardData", "Partition", "write_partition", "file_sha256"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ShardData:
    """The samples of one shard (or of the test set, where ``index`` is ``None``)."""

    x: np.ndarray
    y: np.ndarray
    index: np.ndarray | None = None


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def write_partition(
    out: Path,
    manifest: Manifest,
    shards: list[ShardData],
    test: ShardData,
    force: bool = False,
    on_file: Callable[[str], None] | None = None,
    extra_files: dict[str, Callable[[Path], None]] | None = None,
) -> Manifest:
    """Write a whole partition directory atomically and return the manifest with file hashes.

    ``manifest.files`` is ignored and recomputed from the bytes written. ``on_file``
    is called with each shard's name once it is written (for progress display).
    ``extra_files`` maps a file name the manifest accepts (``dispatch.h5``) to a
    function writing that file at the path it is given; it is written into the same
    staging directory, so it appears atomically with the shards and is hashed like them.
    """
    out = Path(out)
    extra_files = extra_files or {}
    unknown = sorted(set(extra_files) - {DISPATCH_NAME})
    if unknown:
        raise ValueError(f"extra partition files must be among {DISPATCH_NAME}, got {unknown}")
    refuse_existing(out, force)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as exc:  # a file where a parent directory should be, no permission, name too long
        raise DataError(f"cannot create {out} ({exc.strerror or exc}); choose another --out") from exc
    try:
        files = {}
        for node, shard in enumerate(shards):
            files[shard_name(node)] = _write_arrays(staging / shard_name(node), shard, node=node)
            if on_file:
                on_file(shard_name(node))
        files[TEST_NAME] = _write_arrays(staging / TEST_NAME, test, node=-1)
        for name, write in extra_files.items():
            write(staging / name)
            files[name] = file_sha256(staging / name)
        complete = replace(manifest, files=files)
        (staging / MANIFEST_NAME).write_text(complete.to_json())
        _move_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return complete


def refuse_existing(out: Path, force: bool) -> None:
    """Raise unless ``out`` is free and can be made, or ``force`` allows replacing it."""
    try:
        exists = out.exists()
        blocking = next((parent for parent in out.parents if parent.exists() and not parent.is_dir()), None)
    except OSError as exc:  # a name too long, a loop of symbolic links
        raise DataError(f"cannot use {out} ({exc.strerror or exc}); choose another --out") from exc
    if blocking is not None:
        raise DataError(f"cannot create {out}: {blocking} is a file, not a directory; choose another --out")
    if exists and not force:
        raise DataError(f"{out} already exists; choose another --out or pass --force to replace it")
    if exists and not (out / MANIFEST_NAME).is_file():
        # --force replaces partitions, never an unrelated directory a typo pointed at.
        raise DataError(f"{out} exists and is not a partition directory; refusing to replace it")


def _write_arrays(path: Path, data: ShardData, node: int) -> str:
    with h5py.File(path, "w") as handle:
        # No timestamps: the same seed must give byte-identical files.
        handle.create_dataset("x", data=data.x.astype(np.float32, copy=False), track_times=False)
        handle.create_dataset("y", data=data.y.astype(np.int64, copy=False), track_times=False)
        if data.index is not None:
            handle.create_dataset("index", data=data.index.astype(np.int64, copy=False), track_times=False)
        handle.attrs["node"] = node
    return file_sha256(path)


def _move_into_place(staging: Path, out: Path) -> None:
    if not out.exists():
        staging.rename(out)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    retired.rmdir()
    out.rename(retired)
    staging.rename(out)
    shutil.rmtree(retired, ignore_errors=True)


class Partition:
    """A partition directory opened for reading; the manifest is checked on open."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.manifest = Manifest.read(self.directory)

    def shard_path(self, node: int) -> Path:
        if not 0 <= node < self.manifest.nodes:
            raise DataError(f"node {node} is not in this partition of {self.manifest.nodes} nodes")
        return self.directory / shard_name(node)

    def read_shard(self, node: int, verify: bool = True) -> ShardData:
        """Read node ``node``'s shard, checking its SHA-256 against the manifest first."""
        return self._read(self.shard_path(node), verify, self.manifest.shards[node].size, expect_index=True)

    def read_test(self, verify: bool = True) -> ShardData:
        """Read the test set, checking its SHA-256 against the manifest first."""
        return self._read(self.directory / TEST_NAME, verify, self.manifest.test.size, expect_index=False)

    def dispatch_rule(self, verify: bool = True) -> DispatchRule:
        """Read the rule that routed the training points, checking its SHA-256 first.

        Route test or new points with it (``rule.route(x)``) to the nodes their
        neighbours went to. Only ``dispatch`` partitions have one.
        """
        if DISPATCH_NAME not in self.manifest.files:
            raise DataError(
                f"partition {self.directory} has no dispatch rule: it was made with scheme "
                f"{self.manifest.scheme!r}; only --scheme dispatch partitions route new points"
            )
        path = self.directory / DISPATCH_NAME
        if verify and (problem := self._file_problem(path)):
            raise DataError(f"{problem} in {self.directory}; recreate the partition")
        return DispatchRule.load(path)

    def verify(self) -> None:
        """Check every file's SHA-256, then read every shard; raise one DataError naming all damaged files.

        Reading matters: whoever edits a shard can write its new SHA-256 into partition.json.
        """
        problems = [p for name in self.manifest.files if (p := self._file_problem(self.directory / name))]
        sizes = {shard_name(node): info.size for node, info in enumerate(self.manifest.shards)}
        for name, size in [*sizes.items(), (TEST_NAME, self.manifest.test.size)]:
            if not any(problem.startswith(f"{name} ") for problem in problems):  # one problem per file
                try:
                    self._load(self.directory / name, size, expect_index=name != TEST_NAME)
                except _Damaged as exc:
                    problems.append(str(exc))
        if problems:
            raise DataError(
                f"partition {self.directory} is damaged: " + "; ".join(problems) + "; recreate the partition"
            )

    def _file_problem(self, path: Path) -> str | None:
        if problem := file_problem(path):  # a FIFO would block the hash, /dev/zero would never end it
            return f"{path.name} {problem}"
        if not path.is_file():
            return f"{path.name} is missing"
        try:
            digest = file_sha256(path)
        except OSError as exc:
            return f"{path.name} cannot be read ({exc.strerror or exc})"
        if digest != self.manifest.files[path.name]:
            return f"{path.name} is corrupted (its SHA-256 differs from partition.json)"
        return None

    def _read(self, path: Path, verify: bool, size: int, expect_index: bool) -> ShardData:
        if verify and (problem := self._file_problem(path)):
            raise DataError(f"{problem} in {self.directory}; recreate the partition")
        try:
            return self._load(path, size, expect_index)
        except _Damaged as exc:
            raise DataError(f"{exc}; recreate the partition") from exc.__cause__

    def _load(self, path: Path, size: int, expect_index: bool) -> ShardData:
        """Read ``path``'s datasets, checked for what training relies on; raise ``_Damaged`` if unusable."""
        if problem := file_problem(path):  # unverified: HDF5 would still wait forever on a FIFO
            raise _Damaged(f"{path} {problem}")
        shapes = {"x": (size, *self.manifest.input_shape), "y": (size,)}
        if expect_index:
            shapes["index"] = (size,)
        try:
            with h5py.File(path, "r") as handle:
                # Shapes first: a damaged header could otherwise talk the reader into any allocation.
                wrong = [dataset_problem(handle.get(name), name, shape) for name, shape in shapes.items()]
                if any(wrong):
                    raise _Damaged(f"{path}: {'; '.join(filter(None, wrong))}")
                with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, refused below
                    x = np.asarray(handle["x"][...], dtype=np.float32)
                stored = {name: handle[name][...] for name in ("y", "index") if name in shapes}
        # h5py reports a damaged file as any of these, depending on which structure broke.
        except (OSError, KeyError, TypeError, ValueError, RuntimeError) as exc:
            detail = " ".join(str(exc).split())  # h5py messages may span lines; the CLI shows one
            raise _Damaged(f"cannot read {path} ({detail})") from exc
        wrong = [feature_problem(x), *(whole_number_problem(v, name) for name, v in stored.items())]
        if any(wrong):
            raise _Damaged(f"{path}: {'; '.join(filter(None, wrong))}")
        y = stored["y"].astype(np.int64)
        index = stored["index"].astype(np.int64) if expect_index else None
        classes = len(self.manifest.classes)
        if y.size and not 0 <= y.min() <= y.max() < classes:
            raise _Damaged(f"{path} holds labels outside 0..{classes - 1}")
        return ShardData(x, y, index)


class _Damaged(Exception):
    """Why a data file cannot be used, a sentence naming it; the caller adds the fix."""
