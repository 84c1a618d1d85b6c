"""The dispatch rule: where a point goes, saved beside a partition so new points can follow.

A rule is a feature map (none, PCA or a random projection), the k-means centres in
that space, and the node each centre belongs to. A point's distance to a node is its
distance to that node's nearest centre, so routing needs only the rule, never the
training data: the test set, or points arriving later, are sent where their
neighbours went (Dick et al. 2017, "Data driven resource allocation for distributed
learning", §3: the dispatch rule is learnt once and then applied to every point).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from fedgossip.errors import DataError

__all__ = ["DispatchRule", "flatten", "project"]

_FORMAT = "fedgossip-dispatch-rule"
_VERSION = 1
_CHUNK_VALUES = 1 << 22  # features of the points mapped at once (32 MiB as float64): bounded memory


def flatten(x: np.ndarray) -> np.ndarray:
    """Return ``x`` as a 2-D array ``[points, features]``: images become vectors."""
    x = np.asarray(x)
    return x.reshape(len(x), -1)


def project(x: np.ndarray, offset: np.ndarray | None, projection: np.ndarray | None) -> np.ndarray:
    """Map flattened points by ``(x - offset) @ projection``, or return them as floats if there is none."""
    x = x.astype(np.float64, copy=False)
    return x if projection is None else (x - offset) @ projection


@dataclass(frozen=True)
class DispatchRule:
    """Send points to the nodes whose k-means centres are nearest.

    ``projection`` is ``None`` for raw features; otherwise a point ``x`` is mapped to
    ``(x - offset) @ projection``, with ``offset`` the PCA mean (zeros for a random
    projection). ``cluster_to_node[c]`` is the node owning centre ``c``.
    """

    centres: np.ndarray  # [K, D] float64
    cluster_to_node: np.ndarray  # [K] int64, every node in 0..num_nodes-1 owns at least one centre
    num_nodes: int
    offset: np.ndarray | None = None  # [d] float64, only with a projection
    projection: np.ndarray | None = None  # [d, D] float64

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise ValueError("invalid dispatch rule: " + "; ".join(problems))

    @property
    def input_dim(self) -> int:
        """Return the number of features a flattened input point must have."""
        return len(self.projection) if self.projection is not None else self.centres.shape[1]

    def features(self, x: np.ndarray) -> np.ndarray:
        """Map points (any shape, first axis the points) into the space the centres live in."""
        flat = flatten(x)
        if flat.shape[1] != self.input_dim:
            raise DataError(
                f"the dispatch rule takes points of {self.input_dim} features, got {flat.shape[1]}; "
                "route points of the dataset the partition was made from"
            )
        return project(flat, self.offset, self.projection)

    def node_distances(self, x: np.ndarray) -> np.ndarray:
        """Return squared distances ``[points, nodes]`` from each point to each node's nearest centre."""
        flat = flatten(x)
        out = np.empty((len(flat), self.num_nodes))
        by_node = np.argsort(self.cluster_to_node, kind="stable")
        starts = np.searchsorted(self.cluster_to_node[by_node], np.arange(self.num_nodes))
        for rows in self._chunks(flat):
            to_centres = self._centre_distances(self.features(flat[rows]))
            out[rows] = np.minimum.reduceat(to_centres[:, by_node], starts, axis=1)
        return out

    def route(self, x: np.ndarray, replication: int = 1) -> np.ndarray:
        """Return the ``replication`` nearest nodes of each point, nearest first, ``[points, replication]``.

        Capacity is ignored: this is where a new point belongs, not a balanced split.
        Ties go to the lower node, so routing is deterministic.
        """
        if not 1 <= replication <= self.num_nodes:
            raise ValueError(f"replication must lie in 1..{self.num_nodes}, got {replication}")
        flat = flatten(x)
        out = np.empty((len(flat), replication), dtype=np.int64)
        for rows in self._chunks(flat):
            distances = self.node_distances(flat[rows])
            if replication == 1:  # argmin also takes the first of equals, without a full sort
                out[rows] = np.argmin(distances, axis=1)[:, None]
            else:
                out[rows] = np.argsort(distances, axis=1, kind="stable")[:, :replication]
        return out

    def _chunks(self, flat: np.ndarray) -> list[slice]:
        """Cut the points into runs whose features and distances stay within ``_CHUNK_VALUES``."""
        step = max(1, _CHUNK_VALUES // max(flat.shape[1], self.centres.shape[1], self.num_nodes))
        return [slice(begin, begin + step) for begin in range(0, len(flat), step)]

    def _centre_distances(self, z: np.ndarray) -> np.ndarray:
        """Return squared distances ``[points, K]`` from mapped points ``z`` to every centre."""
        # |z|² - 2 z·c + |c|², clipped: rounding may make a tiny distance slightly negative
        sq = (z * z).sum(axis=1)[:, None] - 2.0 * (z @ self.centres.T) + (self.centres**2).sum(axis=1)
        return np.maximum(sq, 0.0)

    def save(self, path: Path) -> None:
        """Write the rule as HDF5 (no pickle), byte-identical for the same rule."""
        with h5py.File(path, "w") as handle:
            handle.attrs["format"] = _FORMAT
            handle.attrs["version"] = _VERSION
            handle.attrs["num_nodes"] = self.num_nodes
            handle.create_dataset("centres", data=self.centres, track_times=False)
            handle.create_dataset("cluster_to_node", data=self.cluster_to_node, track_times=False)
            if self.projection is not None:
                handle.create_dataset("offset", data=self.offset, track_times=False)
                handle.create_dataset("projection", data=self.projection, track_times=False)

    @classmethod
    def load(cls, path: Path) -> DispatchRule:
        """Read a rule written by :meth:`save`; raise ``DataError`` naming the file if it is not one."""
        try:
            with h5py.File(path, "r") as handle:
                if handle.attrs.get("format") != _FORMAT or handle.attrs.get("version") != _VERSION:
                    raise DataError(
                        f"{path} is not a version-{_VERSION} dispatch rule; recreate the partition"
                    )
                arrays = {
                    key: np.asarray(handle[key][...]) if key in handle else None
                    for key in ("centres", "cluster_to_node", "offset", "projection")
                }
                num_nodes = int(handle.attrs["num_nodes"])
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise DataError(f"cannot read the dispatch rule {path} ({exc}); recreate the partition") from exc
        if arrays["centres"] is None or arrays["cluster_to_node"] is None:
            raise DataError(f"{path} lacks the centres of a dispatch rule; recreate the partition")
        try:
            return cls(num_nodes=num_nodes, **arrays)
        except ValueError as exc:
            raise DataError(f"{path} holds a damaged dispatch rule ({exc}); recreate the partition") from exc

    def _problems(self) -> list[str]:
        centres, owner = self.centres, self.cluster_to_node
        problems = []
        if centres.ndim != 2 or len(centres) == 0 or not _finite_floats(centres):
            problems.append(
                f"centres must be a non-empty finite float [K, D] array, got {centres.dtype} {centres.shape}"
            )
        if owner.shape != centres.shape[:1] or not np.issubdtype(owner.dtype, np.integer):
            problems.append(
                f"cluster_to_node must give one integer node per centre, got {owner.dtype} {owner.shape}"
            )
        elif self.num_nodes < 1 or not np.array_equal(np.unique(owner), np.arange(self.num_nodes)):
            problems.append(
                f"cluster_to_node must give each of the {self.num_nodes} nodes at least one centre"
            )
        if (self.offset is None) != (self.projection is None):
            problems.append("offset and projection come together or not at all")
        elif self.projection is not None:
            projection, offset = self.projection, self.offset
            if not (_finite_floats(projection) and _finite_floats(offset)):
                problems.append("offset and projection must be finite floats")
            elif projection.ndim != 2 or projection.shape[1:] != centres.shape[1:]:
                problems.append(f"projection must be [d, D] as wide as the centres, got {projection.shape}")
            elif offset.shape != projection.shape[:1]:
                problems.append(f"offset must have {len(projection)} entries, got {offset.shape}")
        return problems


def _finite_floats(array: np.ndarray) -> bool:
    return np.issubdtype(array.dtype, np.floating) and bool(np.all(np.isfinite(array)))
