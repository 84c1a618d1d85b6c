"""Checks shared by the partitioners, run before any work is done.

Each ``*_problems`` function returns the problems it finds as sentences that name
the rule and the fix; a partitioner gathers them all and calls :func:`refuse`, so
the user sees every problem at once instead of fixing them one run at a time.
"""

from __future__ import annotations

import numpy as np

from fedgossip.errors import ConfigError, DataError
from fedgossip.registry import check_params

__all__ = ["check_params", "node_problems", "min_size_problems", "refuse", "class_sizes"]


def node_problems(scheme: str, num_samples: int, num_nodes: int) -> list[str]:
    """Check the rules every scheme shares: at least one node, and a sample for each node."""
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, (int, np.integer)):
        return [f"the number of nodes must be an integer, got {num_nodes!r}"]
    if num_nodes < 1:
        return [f"the number of nodes must be at least 1, got {num_nodes}; set --nodes to 1 or more"]
    if num_nodes > num_samples:
        return [
            f"{scheme} cannot give each of {num_nodes} nodes a sample: the data has only "
            f"{num_samples}; use at most {num_samples} nodes"
        ]
    return []


def min_size_problems(scheme: str, min_size: int, num_samples: int, num_nodes: int) -> list[str]:
    """Check that ``min_size`` samples for every node fit in the data."""
    if min_size <= 1 or num_nodes < 1 or min_size * num_nodes <= num_samples:
        return []  # min_size <= 1 is already covered by node_problems
    return [
        f"{scheme} min_size={min_size} needs at least {min_size * num_nodes} samples for "
        f"{num_nodes} nodes, but the data has {num_samples}; lower min_size to at most "
        f"{num_samples // num_nodes} or use at most {num_samples // min_size} nodes (--nodes)"
    ]


def refuse(problems: list[str]) -> None:
    """Raise one ``ConfigError`` listing every problem, if there are any."""
    if problems:
        raise ConfigError("; ".join(problems))


def class_sizes(y: np.ndarray, num_classes: int) -> np.ndarray:
    """Return the number of samples of each class, after checking the labels are usable."""
    y = np.asarray(y)
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or y.size == 0):
        raise DataError(f"labels must be a 1-D integer array, got {y.dtype} of shape {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(
            f"labels must lie in 0..{num_classes - 1} for {num_classes} classes, "
            f"found {y.min()}..{y.max()}; check the source's class list"
        )
    return np.bincount(y.astype(np.int64, copy=False), minlength=num_classes).astype(np.int64)
