"""Natural partition: the groups a source already has (devices, writers, users) become nodes."""

from __future__ import annotations

import heapq

import numpy as np

from fedgossip.data.partition.base import Partitioner, Samples
from fedgossip.data.partition.checks import node_problems, refuse
from fedgossip.data.partition.counts import cut
from fedgossip.errors import ConfigError, DataError

__all__ = ["Natural"]


class Natural(Partitioner):
    """Keep the source's natural groups together: one group per node, or several when nodes are fewer.

    With as many nodes as groups, node ``i`` holds the ``i``-th group in sorted
    order of the group ids. With fewer nodes, groups are dealt largest first, each
    to the node that currently holds the fewest samples (ties to the lower node), so
    node sizes come out as even as whole groups allow (the LPT rule of Graham 1969,
    within 4/3 of the best possible largest node). The result depends on the data
    only, not on the seed: the natural partition is a property of the source.
    """

    params = ()

    def split(self, samples: Samples, num_nodes: int, rng: np.random.Generator) -> list[np.ndarray]:
        """Return one sorted int64 index array per node; ``rng`` is not used."""
        if samples.groups is None:
            raise ConfigError(
                "natural needs natural groups (devices, writers, ...), but this source has no "
                "natural groups; use a source that has them, such as synthetic, or another "
                "scheme: iid, dirichlet, shards, quantity"
            )
        groups = np.asarray(samples.groups)
        if groups.shape != (len(samples),):
            raise DataError(f"groups must give one group per sample, got {groups.shape} for {len(samples)}")
        _, group_of = np.unique(groups, return_inverse=True)
        group_of = group_of.ravel()
        group_sizes = np.bincount(group_of)
        problems = node_problems("natural", len(samples), num_nodes)
        if not problems and num_nodes > len(group_sizes):
            problems.append(
                f"natural has {len(group_sizes)} groups in the data, fewer than the {num_nodes} nodes, "
                f"and never splits a group; use at most {len(group_sizes)} nodes, or a scheme that "
                f"splits samples (iid, dirichlet, shards, quantity)"
            )
        refuse(problems)

        node_of_group = _deal_groups(group_sizes, num_nodes)
        node_sizes = np.bincount(node_of_group, weights=group_sizes, minlength=num_nodes).astype(np.int64)
        # samples ordered node by node (stable keeps each group's samples together)
        order = np.argsort(node_of_group[group_of], kind="stable")
        return cut(order, node_sizes)


def _deal_groups(group_sizes: np.ndarray, num_nodes: int) -> np.ndarray:
    """Return the node of each group: largest group first, to the currently smallest node."""
    if num_nodes == len(group_sizes):
        return np.arange(num_nodes)
    node_of_group = np.empty(len(group_sizes), dtype=np.int64)
    loads = [(0, node) for node in range(num_nodes)]  # already a heap: sorted
    for group in np.argsort(-group_sizes, kind="stable"):
        load, node = heapq.heappop(loads)
        node_of_group[group] = node
        heapq.heappush(loads, (load + int(group_sizes[group]), node))
    return node_of_group
