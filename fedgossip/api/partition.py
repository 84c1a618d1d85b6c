"""Partitions from Python: cut a dataset into per-node shards, and open one to look inside.

What ``fedgossip partition create`` and ``partition show`` do, as functions; the
CLI calls :func:`create_partition` too, and only renders what it returns.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fedgossip.data.create import PartitionRequest
from fedgossip.data.create import create_partition as _write_partition
from fedgossip.data.manifest import Manifest
from fedgossip.data.shards import Partition as _Shards

__all__ = ["Partition", "create_partition", "default_partition_dir"]

DEFAULT_SCHEME = "dirichlet:alpha=0.5"


class Partition:
    """A partition directory opened for reading: its manifest checked, and by default every file too.

    Parameters
    ----------
    path
        The directory ``fedgossip partition create`` (or :func:`create_partition`) wrote.
    verify
        Check every file's SHA-256 against ``partition.json`` and read every shard
        (slow on huge partitions; the manifest is checked in any case).

    Raises
    ------
    DataError
        ``path`` is not a partition, or a file in it is missing or damaged (all are named).
    """

    def __init__(self, path: str | os.PathLike, verify: bool = True):
        self._shards = _Shards(Path(path))
        if verify:
            self._shards.verify()

    @property
    def path(self) -> Path:
        """The partition directory."""
        return self._shards.directory

    @property
    def manifest(self) -> Manifest:
        """The whole of ``partition.json``, as a frozen dataclass."""
        return self._shards.manifest

    @property
    def nodes(self) -> int:
        """How many nodes (devices) the partition has, one shard each."""
        return self.manifest.nodes

    @property
    def source(self) -> str:
        """The canonical spec of the dataset it was cut from, e.g. ``digits``."""
        return self.manifest.source

    @property
    def scheme(self) -> str:
        """The canonical spec of the partitioner, e.g. ``dirichlet:alpha=0.5,...``."""
        return self.manifest.scheme

    @property
    def classes(self) -> list[str]:
        """The class names, in label order."""
        return list(self.manifest.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one sample, e.g. ``(1, 8, 8)``."""
        return tuple(self.manifest.input_shape)

    @property
    def sizes(self) -> np.ndarray:
        """Return the training samples of each node, ``[nodes]``."""
        return np.array([shard.size for shard in self.manifest.shards], dtype=np.int64)

    @property
    def label_histograms(self) -> np.ndarray:
        """Return each node's count of samples per class, ``[nodes, classes]``."""
        return np.array([shard.label_histogram for shard in self.manifest.shards], dtype=np.int64)

    @property
    def test_size(self) -> int:
        """How many samples the shared test set holds."""
        return self.manifest.test.size

    @property
    def stats(self) -> dict[str, Any]:
        """Heterogeneity measures of the split (label skew, size spread), as ``partition show`` prints."""
        return dict(self.manifest.stats)

    def read_shard(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        """Return node ``node``'s samples and labels ``(x, y)``, its SHA-256 checked first."""
        shard = self._shards.read_shard(node)
        return shard.x, shard.y

    def read_test(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the shared test set ``(x, y)``, its SHA-256 checked first."""
        test = self._shards.read_test()
        return test.x, test.y

    def __repr__(self) -> str:
        return f"Partition({str(self.path)!r}, nodes={self.nodes}, source={self.source!r})"


def default_partition_dir(source: str, nodes: int) -> Path:
    """Return where a partition goes without ``out``: ``datasets/<source name>-<nodes>``."""
    return Path("datasets") / f"{source.partition(':')[0]}-{nodes}"


def create_partition(
    source: str,
    nodes: int,
    scheme: str = DEFAULT_SCHEME,
    out: str | os.PathLike | None = None,
    seed: int = 0,
    test_fraction: float | None = None,
    force: bool = False,
    on_stage: Callable[[str, int], None] | None = None,
    on_file: Callable[[str], None] | None = None,
) -> Partition:
    """Split ``source`` across ``nodes`` nodes and write the partition directory atomically.

    Parameters
    ----------
    source
        A dataset spec: ``digits``, ``synthetic:alpha=1,beta=1``, ``csv:path=F,label=C`` ...
        (``fedgossip data list`` shows them all).
    nodes
        Number of nodes (devices), one shard each.
    scheme
        Partitioner spec, e.g. ``dirichlet:alpha=0.1``, ``iid``, ``shards:classes_per_node=2``.
    out
        The directory to create; default ``datasets/<source>-<nodes>``.
    seed
        Seed of the test hold-out and of the split.
    test_fraction
        Share held out for testing, for sources without a test split (default 0.2).
    force
        Replace ``out`` if it is an existing partition.
    on_stage, on_file
        Progress callbacks: the writing stage with its file count, then each file written.

    Returns
    -------
    Partition
        The partition written (its files were hashed as they were written, so not re-read).

    Raises
    ------
    ConfigError, DataError
        A bad spec, an existing ``out`` without ``force``, an infeasible split; nothing is written.
    """
    out = Path(out) if out is not None else default_partition_dir(source, nodes)
    request = PartitionRequest(
        source=source, scheme=scheme, nodes=nodes, seed=seed, test_fraction=test_fraction
    )
    _write_partition(request, out, force=force, on_stage=on_stage, on_file=on_file)
    return Partition(out, verify=False)
