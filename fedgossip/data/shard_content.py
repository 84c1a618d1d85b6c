"""What a shard file's datasets must be before and after they are read: the checks no checksum makes.

A SHA-256 in partition.json proves a file unchanged since someone wrote its hash,
not that fedgossip wrote the file: whoever edits a shard can rewrite its hash.
So each dataset is checked for what the training relies on. Before reading:
its shape, a real numeric type, and samples that are really stored (a forged
header may declare 10^12 samples in a file of a few kilobytes, and reading it
would allocate them all). After reading: finite features, whole-number labels.
"""

from __future__ import annotations

import h5py
import numpy as np

from fedgossip.bounded_read import memory_bytes

__all__ = ["dataset_problem", "feature_problem", "whole_number_problem"]

_MEMORY_SHARE = 0.5  # one shard may take at most this share of the machine's memory


def dataset_problem(dataset: object, name: str, shape: tuple[int, ...]) -> str | None:
    """Say why ``dataset`` (what ``handle.get(name)`` gave) cannot be read as ``shape`` numbers, or None."""
    if not isinstance(dataset, h5py.Dataset):
        return f"dataset {name!r} is missing"
    if dataset.shape != shape:
        return f"dataset {name!r} has shape {dataset.shape}, partition.json implies {shape}"
    if dataset.dtype.kind not in "biuf":
        # complex, strings, compounds: a cast would drop parts of them, warn, or fail later
        return f"dataset {name!r} holds {dataset.dtype} values, not real numbers"
    return _storage_problem(dataset, name)


def _storage_problem(dataset: h5py.Dataset, name: str) -> str | None:
    """Refuse samples a reader would have to allocate without the file holding them."""
    samples = f"{dataset.shape[0]:,} samples" if dataset.shape else "one value"
    if dataset.nbytes > _MEMORY_SHARE * memory_bytes():
        size = _gib(dataset.nbytes)
        return f"dataset {name!r} declares {samples} ({size}), more than this machine can hold"
    stored = dataset.id.get_storage_size()
    # Uncompressed data takes its full size on disk; compressed data takes some, unless never written.
    filtered = dataset.id.get_create_plist().get_nfilters() > 0
    if dataset.nbytes and (stored == 0 if filtered else stored < dataset.nbytes):
        return f"dataset {name!r} declares {samples} but the file stores only {stored:,} bytes of them"
    return None


def feature_problem(x: np.ndarray) -> str | None:
    """Say which sample of ``x`` (as the model reads it, float32) is not finite, or None."""
    finite = np.isfinite(x).reshape(len(x), -1).all(axis=1) if x.size else np.ones(0, dtype=bool)
    if finite.all():
        return None
    bad = np.flatnonzero(~finite)
    return (
        f"features of {len(bad):,} samples (the first: sample {bad[0]}) are NaN or infinite "
        "(or beyond float32's range)"
    )


def whole_number_problem(values: np.ndarray, name: str) -> str | None:
    """Say why ``values`` (labels or source indices, as stored) are not all whole numbers, or None.

    Integer types pass; floats must hold whole, finite values an int64 represents,
    since a cast would silently turn 2.5 into 2.
    """
    if values.dtype.kind in "biu":
        return None
    whole = np.isfinite(values) & (values == np.round(values)) & (np.abs(values) < 2.0**62)
    if whole.all():
        return None
    first = int(np.flatnonzero(~whole)[0])
    return f"dataset {name!r} holds {float(values[first])!r} at position {first}, not a whole number"


def _gib(count: int) -> str:
    return f"{count / (1 << 30):,.1f} GiB"
