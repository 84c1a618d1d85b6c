"""Turn sample counts into index arrays: apportioning, and cutting shuffled indices.

Label-skew schemes first decide a count matrix ``counts[node, class]`` and only
then touch indices, through :func:`indices_from_counts`; size-skew schemes cut one
shuffled permutation with :func:`cut`. Both return each node's indices sorted, so a
shard keeps the source's order and reading it from an HDF5 file stays sequential.
"""

from __future__ import annotations

import numpy as np

__all__ = ["apportion", "cut", "indices_from_counts"]


def apportion(totals: int | np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Split integer ``totals`` in proportion to ``weights`` (along the last axis).

    Returns int64 counts that sum exactly to each total, each within 1 of its
    quota ``total·w/Σw`` (so a zero weight gets nothing). It rounds the cumulative
    quotas rather than each quota: the sum is then exact by construction, with no
    remainder to hand out and no floating-point corner where it is off by one.
    ``weights`` must have a positive sum in every row.
    """
    weights = np.asarray(weights, dtype=np.float64)
    totals = np.asarray(totals, dtype=np.int64)
    cumulative = np.cumsum(weights, axis=-1)
    if np.any(cumulative[..., -1] <= 0):
        raise ValueError("apportion needs weights with a positive sum")
    # x / x == 1.0 exactly, and division by a positive number keeps the order,
    # so the bounds rise monotonically and the last one is exactly the total
    cumulative /= cumulative[..., -1:]
    bounds = np.rint(cumulative * totals[..., None]).astype(np.int64)
    return np.diff(bounds, axis=-1, prepend=0)


def cut(order: np.ndarray, sizes: np.ndarray) -> list[np.ndarray]:
    """Cut ``order`` into consecutive pieces of ``sizes``; return each piece sorted, as int64."""
    pieces = np.split(np.asarray(order, dtype=np.int64), np.cumsum(sizes)[:-1])
    return [np.sort(piece) for piece in pieces]


def indices_from_counts(y: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Give node ``i`` exactly ``counts[i, c]`` randomly chosen samples of each class ``c``.

    Each class's indices are shuffled once and sliced by the cumulative counts of
    the nodes, all in one gather, so the cost is a sort of the labels whatever the
    number of nodes. ``counts`` must use up every class exactly.
    """
    counts = np.asarray(counts, dtype=np.int64)
    per_class = np.bincount(y, minlength=counts.shape[1])
    if not np.array_equal(counts.sum(axis=0), per_class) or counts.min(initial=0) < 0:
        raise RuntimeError("partitioner bug: the count matrix does not use every class exactly")
    shuffled = rng.permutation(len(y))
    by_class = shuffled[np.argsort(y[shuffled], kind="stable")]  # classes contiguous, shuffled within
    class_start = np.cumsum(per_class) - per_class
    # where node i's block of class c begins in by_class: after the blocks of nodes 0..i-1
    start = class_start[None, :] + np.cumsum(counts, axis=0) - counts
    lengths = counts.ravel()  # node-major, so the gathered array is ordered node by node
    out_start = np.cumsum(lengths) - lengths
    gather = np.repeat(start.ravel() - out_start, lengths) + np.arange(len(y))
    return cut(by_class[gather], counts.sum(axis=1))
