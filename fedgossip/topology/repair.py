"""The communication graph after devices were lost (``--on-failure continue``): bridged over each gap.

The rule, applied to the lost nodes one at a time in ascending order: remove the node's
edges and join its surviving neighbours, in ascending order, in a path (the first to the
second, the second to the third, ...). A path through the lost node u–v–w is replaced by
u … w along that path, so a connected graph stays connected among the survivors whatever
was lost; a ring closes over the gap (its two neighbours are joined), and degrees grow by
at most two per loss. Node indices are kept: a lost node stays in the graph, isolated, so
its Metropolis row is the identity and no survivor mixes it in.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from fedgossip.topology.base import Topology

__all__ = ["bridge_lost_nodes"]


def bridge_lost_nodes(topology: Topology, lost: Iterable[int]) -> Topology:
    """Return ``topology`` with every node of ``lost`` isolated and its surviving neighbours bridged."""
    adjacency = [set(topology.neighbors(i)) for i in range(topology.num_nodes)]
    gone = sorted(set(lost))
    for node in gone:
        around = sorted(adjacency[node])
        for peer in around:
            adjacency[peer].discard(node)
        adjacency[node] = set()
        for left, right in itertools.pairwise(around):
            adjacency[left].add(right)
            adjacency[right].add(left)
    pairs = [(i, j) for i, peers in enumerate(adjacency) for j in peers if i < j]
    name = f"{topology.name} (without {len(gone)} lost)" if topology.name else ""
    return Topology.from_edges(topology.num_nodes, pairs, name=name)
