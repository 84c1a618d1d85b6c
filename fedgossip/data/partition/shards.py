"""Pathological label skew: every node holds exactly K distinct classes."""

from __future__ import annotations

import numpy as np

from fedgossip.data.partition.base import Partitioner, Samples
from fedgossip.data.partition.checks import check_params, class_sizes, node_problems, refuse
from fedgossip.data.partition.counts import indices_from_counts
from fedgossip.specs import Param

__all__ = ["Shards"]


class Shards(Partitioner):
    """Give every node exactly ``classes_per_node`` distinct classes, each class to near-equally many nodes.

    The setting of McMahan et al. (2017), "Communication-Efficient Learning of Deep
    Networks from Decentralized Data", §3, without its flaw: sorting by label and
    dealing out 2N shards at random can give a node two shards of the same class,
    or shards that straddle three classes. Here the class slots of the nodes are
    filled from a sequence of random permutations of the classes present, so each
    class is held by ⌊NK/L⌋ or ⌈NK/L⌉ nodes (L classes), and each class's shuffled
    samples are then split evenly (±1) among its holders.
    """

    params = (Param("classes_per_node", int, 2, "number of distinct classes on every node", ge=1),)

    def __init__(self, classes_per_node: int = 2):
        check_params(type(self), classes_per_node=classes_per_node)
        self.classes_per_node = int(classes_per_node)

    def split(self, samples: Samples, num_nodes: int, rng: np.random.Generator) -> list[np.ndarray]:
        """Return one sorted int64 index array per node."""
        per_class = class_sizes(samples.y, samples.num_classes)
        problems = node_problems("shards", len(samples), num_nodes)
        if not problems:
            problems = self._problems(per_class, num_nodes)
        refuse(problems)

        present = np.flatnonzero(per_class)
        holders = _deal_classes(len(present), num_nodes, self.classes_per_node, rng)  # [node, K]
        counts = np.zeros((num_nodes, len(per_class)), dtype=np.int64)
        for slot, cls in enumerate(present):
            nodes = rng.permutation(np.flatnonzero((holders == slot).any(axis=1)))
            # array_split sizes, with the one-larger pieces going to randomly ordered holders
            base, extra = divmod(int(per_class[cls]), len(nodes))
            counts[nodes, cls] = base + (np.arange(len(nodes)) < extra)
        return indices_from_counts(samples.y, counts, rng)

    def _problems(self, per_class: np.ndarray, num_nodes: int) -> list[str]:
        k = self.classes_per_node
        num_present = int(np.count_nonzero(per_class))
        problems = []
        if k > num_present:
            problems.append(
                f"shards classes_per_node={k} asks for more classes than the data has "
                f"({num_present} with samples); set classes_per_node to at most {num_present}"
            )
        if num_nodes * k < num_present:
            problems.append(
                f"shards with {num_nodes} nodes × classes_per_node={k} has only {num_nodes * k} "
                f"class slots for {num_present} classes, so the samples of some classes would be "
                f"dropped; raise classes_per_node to at least {-(-num_present // num_nodes)} "
                f"or use at least {-(-num_present // k)} nodes"
            )
        if problems:
            return problems
        # which classes get the extra holder is random, so every class must afford the larger count
        most_holders = -(-num_nodes * k // num_present)
        smallest = int(per_class[per_class > 0].min())
        if smallest < most_holders:
            problems.append(
                f"shards gives each class to up to {most_holders} nodes ({num_nodes} nodes × "
                f"classes_per_node={k} over {num_present} classes), but the smallest class has only "
                f"{smallest} samples, so some node would get none of it; lower classes_per_node "
                f"or --nodes so that nodes × classes_per_node ≤ {smallest * num_present}"
            )
        return problems


def _deal_classes(num_classes: int, num_nodes: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``[num_nodes, k]`` class slots, distinct in each row, each class used ⌊NK/L⌋ or ⌈NK/L⌉ times.

    Rows are consecutive runs of k in a sequence of random permutations of the
    classes. A run that straddles two permutations holds the tail of one and the
    head of the next; putting the tail's classes last in the next permutation keeps
    the run distinct (possible because k ≤ L). A fresh permutation per cycle, rather
    than one repeated, varies which classes share a node.
    """
    cycles = -(-num_nodes * k // num_classes)
    perms = rng.permuted(np.tile(np.arange(num_classes), (cycles, 1)), axis=1)
    # only cycles that begin partway through a node need fixing; in order, since a
    # fixed cycle's tail is what the next straddling node already holds
    for cycle in np.flatnonzero(np.arange(cycles) * num_classes % k):
        held = perms[cycle - 1, num_classes - cycle * num_classes % k :]
        clash = np.isin(perms[cycle], held)
        perms[cycle] = np.concatenate((perms[cycle][~clash], perms[cycle][clash]))
    return perms.ravel()[: num_nodes * k].reshape(num_nodes, k)
