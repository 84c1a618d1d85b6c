"""How long partitioning takes at scale, beside the cheapest possible split of the same labels.

The reference is the ``iid`` scheme (one permutation and a cut) on the same
labels in the same process, so the figure that matters is the ratio, not the
seconds of this particular machine.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from fedgossip.data.partition.base import PARTITIONERS, Samples, check_cover

__all__ = ["bench_partition"]


def bench_partition(
    scheme: str = "dirichlet:alpha=0.01,min_size=10",
    nodes: int = 1000,
    samples: int = 60_000,
    classes: int = 10,
    repeats: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Time ``scheme`` and ``iid`` on ``samples`` uniformly drawn labels; return the best of ``repeats``."""
    labels = np.random.default_rng(seed).integers(0, classes, size=samples).astype(np.int64)
    data = Samples(y=labels, num_classes=classes)
    scheme = PARTITIONERS.create(scheme).spec  # canonical, with every default spelled out
    timings = {name: _best_time(name, data, nodes, repeats, seed) for name in (scheme, "iid")}
    return {
        "benchmark": "partition",
        "scheme": scheme,
        "nodes": nodes,
        "samples": samples,
        "classes": classes,
        "repeats": repeats,
        "seconds": timings[scheme],
        "reference": "iid",
        "reference_seconds": timings["iid"],
        "ratio_to_reference": timings[scheme] / timings["iid"],
    }


def _best_time(scheme: str, data: Samples, nodes: int, repeats: int, seed: int) -> float:
    partitioner = PARTITIONERS.create(scheme)
    best = float("inf")
    for repeat in range(repeats):
        rng = np.random.default_rng([seed, repeat])
        start = time.perf_counter()
        parts = partitioner.split(data, nodes, rng)
        best = min(best, time.perf_counter() - start)
        check_cover(parts, len(data), partitioner.replication)  # outside the timed region
    return best
