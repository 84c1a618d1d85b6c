"""``metrics.h5``: the evaluations of a run, appended one at a time by rank 0.

One dataset per metric, one row per evaluation (DESIGN §6)::

    round        [evals]              int64
    wall_time    [evals]              float64, seconds since training started
    <per-rank>   [evals, world_size]  float64, e.g. test_accuracy, bytes_sent (cumulative)
    <scalar>     [evals]              float64, e.g. avg_model_accuracy, consensus_distance

The file is created whole (a temporary file renamed into place) with the first
evaluation; later evaluations are appended in place, each with the file opened,
flushed and closed, so a crash keeps every evaluation appended before it.

Readers (``fedgossip summary`` on a running run) never lock the file, so that
looking at metrics can never make the training's next append fail. Consistency
comes from two attributes instead: ``evals``, the number of whole rows, written
last, and ``seq``, odd while an append is under way, like a seqlock. A reader
retries until it has read the file with no append under way.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np

from fedgossip.bounded_read import file_problem
from fedgossip.errors import DataError

__all__ = ["METRICS_NAME", "EDGES_GROUP", "MetricsWriter", "read_metrics", "read_edges"]

METRICS_NAME = "metrics.h5"
_AXES = ("round", "wall_time")
# The traffic matrix: edge_sender, edge_receiver, edge_bytes [edges], cumulative at the run's end.
EDGES_GROUP = "edges"
_FORMAT_VERSION = 1
_READ_TRIES = 60
_READ_PAUSE_S = 0.05
# An append takes milliseconds: a file that stays mid-append this many tries (1 s) lost its writer.
_DEAD_WRITER_TRIES = 20


class MetricsWriter:
    """Append evaluations to ``run_dir/metrics.h5``; any metric names are accepted.

    A metric first seen at a later evaluation reads as NaN for the earlier ones; a
    metric left out of an evaluation reads as NaN there. An existing file is
    continued (a resumed run) if it was written for the same world size.
    """

    def __init__(self, run_dir: Path, world_size: int):
        if not isinstance(world_size, (int, np.integer)) or world_size < 1:
            raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
        self.path = Path(run_dir) / METRICS_NAME
        self.world_size = int(world_size)
        self._evals = 0
        if self.path.exists():
            with _open(self.path, "r") as handle:
                stored = int(handle.attrs.get("world_size", self.world_size))
                self._evals = int(handle.attrs.get("evals", 0))
            if stored != self.world_size:
                raise ValueError(
                    f"{self.path} holds metrics of {stored} ranks, not {self.world_size}; "
                    "a run directory belongs to one world size"
                )

    @property
    def evals(self) -> int:
        """Return how many evaluations the file holds."""
        return self._evals

    def append(
        self,
        round: int,
        wall_time: float,
        per_rank: Mapping[str, np.ndarray],
        scalars: Mapping[str, float | None],
    ) -> None:
        """Append one evaluation and flush it to disk.

        ``per_rank`` arrays must have shape ``[world_size]``; a scalar of ``None`` is
        recorded as NaN. Everything is checked before the file is touched.
        """
        rows = self._checked(per_rank, scalars)
        row = self._evals
        if not self.path.exists():
            self._create(round, wall_time, rows)
        else:
            with _open(self.path, "a") as handle:
                handle.attrs["seq"] = 2 * row + 1
                handle.flush()
                try:
                    _put_row(handle, row, round, wall_time, rows)
                except BaseException:
                    # The half row lies past ``evals``; readers need not wait for it.
                    with contextlib.suppress(Exception):
                        handle.attrs["seq"] = 2 * row
                    raise
                # Written last: until here readers see the evaluations before this one only.
                handle.attrs["evals"] = row + 1
                handle.attrs["seq"] = 2 * row + 2
                handle.flush()
        self._evals = row + 1

    def truncate(self, evaluations: int) -> None:
        """Keep the first ``evaluations`` evaluations and drop the rest; a no-op if there are no more.

        A resumed run calls this with the evaluations its checkpoint counted: the
        rows an interrupted run appended after that checkpoint are evaluated again,
        and must not be recorded twice. Readers see the file before or after, as for
        an append; a crash part way leaves the kept rows, and the next append
        overwrites whatever lies past them.
        """
        if not isinstance(evaluations, (int, np.integer)) or isinstance(evaluations, bool):
            raise ValueError(f"evaluations must be an integer, got {evaluations!r}")
        if not 0 <= evaluations <= self._evals:
            raise ValueError(
                f"cannot keep {evaluations} evaluations of {self.path}: it holds {self._evals}; "
                f"expecting a number in range({self._evals + 1})"
            )
        keep = int(evaluations)
        if keep == self._evals:
            return
        with _open(self.path, "a") as handle:
            handle.attrs["seq"] = 2 * self._evals + 1
            handle.flush()
            try:
                # evals first: from here on the rows past it are invisible, whatever happens next.
                handle.attrs["evals"] = keep
                for dataset in handle.values():
                    if isinstance(dataset, h5py.Dataset) and dataset.shape[0] > keep:
                        dataset.resize(keep, axis=0)
            except BaseException:
                with contextlib.suppress(Exception):
                    self._evals = int(handle.attrs["evals"])
                    handle.attrs["seq"] = 2 * self._evals
                raise
            handle.attrs["seq"] = 2 * keep
            handle.flush()
        self._evals = keep

    def write_edges(self, edges: np.ndarray) -> None:
        """Store the run's traffic matrix: ``[edges, 3]`` rows of (sender node, receiver node, bytes).

        Replaces the edges stored before (the counts are cumulative). The file must exist: a run
        writes its edges after its evaluations.
        """
        edges = np.asarray(edges, dtype=np.int64).reshape(-1, 3)
        with _open(self.path, "a") as handle:
            handle.attrs["seq"] = 2 * self._evals + 1
            handle.flush()
            try:
                if EDGES_GROUP in handle:
                    del handle[EDGES_GROUP]
                group = handle.create_group(EDGES_GROUP)
                for column, name in enumerate(("edge_sender", "edge_receiver", "edge_bytes")):
                    group.create_dataset(name, data=edges[:, column])
            finally:
                handle.attrs["seq"] = 2 * self._evals
                handle.flush()

    def _create(self, round: int, wall_time: float, rows: dict[str, np.ndarray]) -> None:
        # The first evaluation makes the file: built beside it and renamed, so no reader sees it half
        # made. Only rank 0 writes, so the process id makes the staging name unique.
        staging = self.path.with_name(f".{METRICS_NAME}.{os.getpid()}.partial")
        try:
            with _open(staging, "w") as handle:
                handle.attrs["format_version"] = _FORMAT_VERSION
                handle.attrs["world_size"] = self.world_size
                _put_row(handle, 0, round, wall_time, rows)
                handle.attrs["evals"] = 1
                handle.attrs["seq"] = 2
            os.replace(staging, self.path)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise

    def _checked(
        self, per_rank: Mapping[str, np.ndarray], scalars: Mapping[str, float | None]
    ) -> dict[str, np.ndarray]:
        problems, rows = [], {}
        for name in sorted(set(per_rank) & set(scalars)):
            problems.append(f"metric {name!r} is given both per rank and as a scalar")
        for name, value in per_rank.items():
            array = np.ascontiguousarray(value, dtype=np.float64)
            if array.shape != (self.world_size,):
                problems.append(
                    f"per-rank metric {name!r} has shape {array.shape}, expecting ({self.world_size},) "
                    "(one value per rank)"
                )
            rows[name] = array
        for name, value in scalars.items():
            rows[name] = np.float64(np.nan if value is None else value)
        for name in rows:
            if not isinstance(name, str) or not name or "/" in name or name == "." or name in _AXES:
                problems.append(f"metric name {name!r} must be a non-empty name without '/', not {_AXES}")
        if problems:
            raise ValueError(f"cannot append to {self.path}: " + "; ".join(problems))
        return rows


def _put_row(handle: h5py.File, row: int, round: int, wall_time: float, rows: dict[str, np.ndarray]) -> None:
    _put(handle, "round", row, np.int64(round))
    _put(handle, "wall_time", row, np.float64(wall_time))
    for name, value in rows.items():
        _put(handle, name, row, value)
    for name, dataset in handle.items():
        if name not in rows and name not in _AXES and isinstance(dataset, h5py.Dataset):
            _put(handle, name, row, np.full(dataset.shape[1:], np.nan))


def _put(handle: h5py.File, name: str, row: int, value: np.ndarray | np.generic) -> None:
    value = np.asarray(value)
    if name not in handle:
        # Rows before this one never had the metric: they read as NaN (the fill value).
        fill = np.nan if value.dtype.kind == "f" else 0
        tail = value.shape
        chunk_rows = max(1, min(64, 65536 // max(1, int(np.prod(tail)))))
        handle.create_dataset(
            name,
            shape=(row, *tail),
            maxshape=(None, *tail),
            chunks=(chunk_rows, *tail),
            dtype=value.dtype,
            fillvalue=fill,
        )
    dataset = handle[name]
    if dataset.shape[1:] != value.shape:
        kind = "per rank" if dataset.ndim == 2 else "as a scalar"
        raise ValueError(f"metric {name!r} was recorded {kind} before; keep one shape per metric")
    # resize, not grow by one: a row left by an append cut short is overwritten.
    dataset.resize(row + 1, axis=0)
    dataset[row] = value


def read_metrics(run_dir: Path) -> dict[str, np.ndarray]:
    """Return every metric of ``run_dir/metrics.h5`` by name; ``{}`` if the run never evaluated.

    Safe while the run is appending: a read that overlapped an append is retried.
    """
    path = Path(run_dir) / METRICS_NAME
    if not path.exists():
        return {}
    if problem := file_problem(path):  # HDF5 would wait forever on a FIFO
        raise DataError(f"{path} {problem}; the run directory is damaged")
    problem, stuck, stuck_tries = "", None, 0
    for _ in range(_READ_TRIES):
        try:
            seq, metrics = _read_once(path)
            with _open(path, "r") as handle:
                settled = int(handle.attrs.get("seq", 0)) == seq
        except (OSError, KeyError, ValueError) as exc:
            problem, stuck, stuck_tries = str(exc), None, 0
        else:
            if settled and seq % 2 == 0:
                return metrics
            # The same append under way for a second: its writer died; the rows before it are whole.
            stuck_tries = stuck_tries + 1 if settled and seq == stuck else 0
            stuck = seq if settled else None
            if stuck_tries >= _DEAD_WRITER_TRIES:
                return metrics
            problem = "an evaluation was being appended"
        time.sleep(_READ_PAUSE_S)
    raise DataError(
        f"cannot read {path} ({problem}); if the run is still writing it, try again, "
        "otherwise the file is damaged"
    )


def read_edges(run_dir: Path) -> np.ndarray | None:
    """Return the run's traffic matrix as ``[edges, 3]`` int64 rows (sender, receiver, bytes), or None.

    None: the run has not finished, or was made by a fedgossip that did not count bytes per edge.
    """
    path = Path(run_dir) / METRICS_NAME
    if not path.exists():
        return None
    if problem := file_problem(path):
        raise DataError(f"{path} {problem}; the run directory is damaged")
    try:
        with _open(path, "r") as handle:
            if EDGES_GROUP not in handle:
                return None
            group = handle[EDGES_GROUP]
            columns = [
                np.asarray(group[name][:], dtype=np.int64)
                for name in ("edge_sender", "edge_receiver", "edge_bytes")
            ]
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise DataError(f"cannot read the edges of {path} ({exc}); the file is damaged") from None
    if len({column.shape for column in columns}) != 1 or columns[0].ndim != 1:
        raise DataError(f"the edge arrays of {path} differ in shape; the file is damaged")
    return np.stack(columns, axis=1)


def _read_once(path: Path) -> tuple[int, dict[str, np.ndarray]]:
    with _open(path, "r") as handle:
        seq = int(handle.attrs.get("seq", 0))
        evals = int(handle.attrs["evals"])
        metrics = {
            name: np.asarray(dataset[:evals])
            for name, dataset in handle.items()
            if isinstance(dataset, h5py.Dataset)
        }
    if any(len(values) != evals for values in metrics.values()):
        raise ValueError(f"a metric has fewer than the {evals} evaluations recorded")
    return seq, metrics


def _open(path: Path, mode: str) -> h5py.File:
    """Open an HDF5 file without locking it.

    Only rank 0 writes the file, and neither it nor a reader may ever wait for, or
    fail on, a lock another process holds (a notebook with the file open).
    """
    try:
        return h5py.File(path, mode, locking=False)
    except ValueError as exc:
        if "locking" not in str(exc):
            raise
        return h5py.File(path, mode)  # an HDF5 older than 1.10.7 has no locking options
