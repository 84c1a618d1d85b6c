"""Partition statistics: label histograms per node and how far the nodes are from IID.

These numbers fill a partition's manifest and ``fedgossip partition show``, so
every value is a plain Python ``int``/``float`` (JSON-ready) and none is ever NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fedgossip.errors import DataError

__all__ = ["label_histograms", "heterogeneity"]


def label_histograms(labels_per_node: list[np.ndarray], num_classes: int) -> np.ndarray:
    """Count each node's samples per class; return an int64 array ``[nodes, classes]``."""
    histograms = np.zeros((len(labels_per_node), num_classes), dtype=np.int64)
    for node, labels in enumerate(labels_per_node):
        labels = np.asarray(labels)
        if labels.size == 0:
            continue
        if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= num_classes:
            raise DataError(
                f"node {node} has labels outside 0..{num_classes - 1} ({labels.dtype}, "
                f"{labels.min()}..{labels.max()}); pass the dataset's number of classes"
            )
        histograms[node] = np.bincount(labels.ravel(), minlength=num_classes)
    return histograms


def heterogeneity(histograms: np.ndarray) -> dict[str, Any]:
    """Summarise how non-IID a partition is, from its ``[nodes, classes]`` label histograms.

    Returns

    - ``num_nodes``, ``num_samples``;
    - ``label_tv_distance_mean`` / ``_max``: over nodes, the total-variation distance
      ½·Σ_c |p_i(c) − p(c)| between node i's label distribution and the global one
      (0: the node looks like the whole data set; 1: it shares no class with it);
    - ``size_mean``, ``size_cv`` (population std / mean of node sizes), ``size_min``, ``size_max``;
    - ``classes_per_node``: min, p25, median, p75 and max of the number of classes with
      at least one sample on a node;
    - ``effective_classes_mean``: mean over nodes of exp(entropy of the node's labels),
      the number of equally frequent classes with the same entropy; it tells "two classes,
      evenly" from "ten classes, one of which dominates", which a class count cannot.

    An empty node has TV distance 1.0 (it represents none of the data, the worst a node
    can do, so empty nodes raise the mean rather than vanish from it) and 0 effective
    classes. With no samples at all, ``size_cv`` is 0.0.
    """
    histograms = np.asarray(histograms, dtype=np.int64)
    if histograms.ndim != 2 or histograms.shape[0] == 0:
        raise DataError(f"heterogeneity needs histograms of shape [nodes, classes], got {histograms.shape}")
    sizes = histograms.sum(axis=1)
    total = int(sizes.sum())
    filled = sizes > 0
    node_dist = np.zeros(histograms.shape, dtype=np.float64)
    node_dist[filled] = histograms[filled] / sizes[filled, None]
    global_dist = histograms.sum(axis=0) / total if total else np.zeros(histograms.shape[1])

    tv = np.ones(len(sizes))
    tv[filled] = 0.5 * np.abs(node_dist[filled] - global_dist).sum(axis=1)

    # 0·log 0 = 0: absent classes add nothing to the entropy
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(node_dist > 0, node_dist * np.log(node_dist), 0.0)
    effective = np.where(filled, np.exp(-plogp.sum(axis=1)), 0.0)

    mean_size = float(sizes.mean())
    classes = np.count_nonzero(histograms, axis=1)
    p25, median, p75 = np.percentile(classes, [25, 50, 75])
    return {
        "num_nodes": len(sizes),
        "num_samples": total,
        "label_tv_distance_mean": float(tv.mean()),
        "label_tv_distance_max": float(tv.max()),
        "size_mean": mean_size,
        "size_cv": float(sizes.std() / mean_size) if mean_size > 0 else 0.0,
        "size_min": int(sizes.min()),
        "size_max": int(sizes.max()),
        "classes_per_node": {
            "min": int(classes.min()),
            "p25": float(p25),
            "median": float(median),
            "p75": float(p75),
            "max": int(classes.max()),
        },
        "effective_classes_mean": float(effective.mean()),
    }
