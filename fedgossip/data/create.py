"""Make a partition: load a source, hold out a test set, split across nodes, write the directory.

Randomness: one ``SeedSequence(seed)`` is spawned into two generators, one for
the test hold-out and one for the partitioner, so the same seed gives identical
files and changing the scheme never changes which samples are held out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedgossip import __version__
from fedgossip.data.manifest import DISPATCH_NAME, TEST_NAME, Manifest, ShardInfo, shard_name
from fedgossip.data.partition.base import PARTITIONERS, Samples, check_cover
from fedgossip.data.shards import ShardData, refuse_existing, write_partition
from fedgossip.data.sources.base import SOURCES, Dataset
from fedgossip.data.stats import heterogeneity, label_histograms
from fedgossip.errors import ConfigError

__all__ = ["PartitionRequest", "DEFAULT_TEST_FRACTION", "create_partition", "hold_out_test"]

DEFAULT_TEST_FRACTION = 0.2  # used only when the source has no test split of its own


@dataclass(frozen=True)
class PartitionRequest:
    """What the user asked for; ``test_fraction=None`` means the source's split or the default."""

    source: str
    scheme: str
    nodes: int
    seed: int = 0
    test_fraction: float | None = None


def create_partition(
    request: PartitionRequest,
    out: Path,
    force: bool = False,
    on_stage: Callable[[str, int], None] | None = None,
    on_file: Callable[[str], None] | None = None,
) -> Manifest:
    """Build and write the partition ``request`` describes into ``out``; return its manifest.

    Every check that can fail (specs, existing ``out``, feasibility) runs before
    anything is written. ``on_stage(name, total)`` announces the writing stage
    with the number of files to come; ``on_file`` is called after each file.
    """
    if request.nodes < 1:
        raise ConfigError(f"--nodes must be at least 1, got {request.nodes}")
    refuse_existing(Path(out), force)
    partitioner = PARTITIONERS.create(request.scheme)  # spec errors before the (slow) load
    source = SOURCES.create(request.source)
    dataset = source.load()
    test_fraction = _resolve_test_fraction(request, dataset, source.spec)

    split_rng, partition_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(request.seed).spawn(2)
    )
    train_idx, test_idx = hold_out_test(dataset, test_fraction, split_rng)
    samples = Samples(
        y=dataset.y_train[train_idx],
        num_classes=len(dataset.classes),
        x=dataset.x_train[train_idx],
        groups=None if dataset.groups is None else dataset.groups[train_idx],
    )
    parts = partitioner.split(samples, request.nodes, partition_rng)
    check_cover(parts, len(samples), partitioner.replication)

    # index: position in the source's training split, so the files can be checked against it
    shards = [ShardData(samples.x[p], samples.y[p], train_idx[p]) for p in parts]
    test = _test_data(dataset, test_idx)
    histograms = label_histograms([s.y for s in shards], len(dataset.classes))
    # data-dependent schemes record what they found (dispatch: cluster purity, ...) and may
    # leave a rule that routes new points the same way, written beside the shards
    records = getattr(partitioner, "records", None)
    rule = getattr(partitioner, "rule", None)
    manifest = Manifest(
        source=source.spec,
        source_sha256=dataset.fingerprint(),
        scheme=partitioner.spec,
        seed=request.seed,
        nodes=request.nodes,
        classes=list(dataset.classes),
        input_shape=list(dataset.input_shape),
        test_fraction=test_fraction,
        replication=partitioner.replication,
        shards=[
            ShardInfo(shard_name(i), len(s.y), h.tolist())
            for i, (s, h) in enumerate(zip(shards, histograms, strict=True))
        ],
        test=ShardInfo(TEST_NAME, len(test.y), label_histograms([test.y], len(dataset.classes))[0].tolist()),
        stats=heterogeneity(histograms),
        files={},
        created_with=__version__,
        extra={partitioner.name: records} if records else {},
    )
    if on_stage:
        on_stage("writing shards", len(shards))
    extra_files = {DISPATCH_NAME: rule.save} if rule is not None else None
    return write_partition(
        Path(out), manifest, shards, test, force=force, on_file=on_file, extra_files=extra_files
    )


def _resolve_test_fraction(request: PartitionRequest, dataset: Dataset, source: str) -> float | None:
    if dataset.has_test_split:
        if request.test_fraction is not None:
            raise ConfigError(
                f"{source} has its own test split; --test-fraction applies only to sources without one"
            )
        return None
    fraction = DEFAULT_TEST_FRACTION if request.test_fraction is None else request.test_fraction
    if not 0 < fraction < 1:
        raise ConfigError(f"--test-fraction must lie strictly between 0 and 1, got {fraction}")
    return fraction


def hold_out_test(
    dataset: Dataset, fraction: float | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return (train, test) indices into ``dataset``'s training split.

    With ``fraction=None`` all training samples stay (the test set is the
    source's own). Otherwise each class gives ``round(fraction · n_class)`` samples
    to the test set — stratified, so the test set has the global label mix.
    """
    n = len(dataset.y_train)
    if fraction is None:
        return np.arange(n, dtype=np.int64), np.empty(0, dtype=np.int64)
    order = rng.permutation(n)
    by_class = order[np.argsort(dataset.y_train[order], kind="stable")]
    counts = np.bincount(dataset.y_train, minlength=len(dataset.classes))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    test_counts = np.rint(counts * fraction).astype(np.int64)
    is_test = np.arange(n) - np.repeat(starts, counts) < np.repeat(test_counts, counts)
    test = np.sort(by_class[is_test])
    train = np.sort(by_class[~is_test])
    if len(train) == 0 or len(test) == 0:
        raise ConfigError(
            f"--test-fraction {fraction} leaves {len(train)} training and {len(test)} test samples "
            f"of {n}; choose a fraction that keeps both non-empty"
        )
    return train, test


def _test_data(dataset: Dataset, test_idx: np.ndarray) -> ShardData:
    if dataset.has_test_split:
        return ShardData(dataset.x_test, dataset.y_test)
    return ShardData(dataset.x_train[test_idx], dataset.y_train[test_idx])
