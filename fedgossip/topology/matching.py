"""Random matchings: which pairs of neighbours gossip together in a synchronous SwarmSGD round.

No rank tells the others the matching. Each draws it on its own from a generator
seeded identically on every rank (the shared topology seed and the round number,
see :func:`round_matching`), and since the draw depends on nothing else, all ranks
agree on who is paired with whom. A generator that differs per rank (data order,
DP noise) must never be used here: ranks would wait on partners that never come.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from fedgossip.topology.base import Topology

__all__ = ["random_matching", "round_matching", "partner_of"]


def random_matching(topology: Topology, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Return a random maximal matching of ``topology`` as sorted ``(i, j)`` pairs, i < j.

    Edges are visited in a random order and each is kept when both ends are still
    free. The result is maximal: every edge has an end in some pair, so no pair of
    idle neighbours is left out. (Not uniform over maximal matchings; SwarmSGD
    needs only that every edge is chosen with positive probability each round.)
    """
    n = topology.num_nodes
    edges = topology.edges
    taken = [False] * n
    pairs = []
    for k in rng.permutation(len(edges)).tolist():
        i, j = edges[k]
        if not (taken[i] or taken[j]):
            taken[i] = taken[j] = True
            pairs.append((i, j))
            if 2 * len(pairs) >= n - 1:
                break  # at most one node is free: no edge can be added
    return sorted(pairs)


def round_matching(topology: Topology, seed: int, round_index: int) -> list[tuple[int, int]]:
    """Return the matching of round ``round_index``, the same on every rank given the same ``seed``.

    ``seed`` must be shared by all ranks (the topology seed), never rank-dependent.
    """
    return random_matching(topology, np.random.default_rng([seed, round_index]))


def partner_of(matching: Iterable[tuple[int, int]], num_nodes: int) -> np.ndarray:
    """Return each node's partner in ``matching``, or -1 for an unmatched node, int64 ``[num_nodes]``."""
    partner = np.full(num_nodes, -1, dtype=np.int64)
    for i, j in matching:
        if i == j:
            raise ValueError(f"pair ({i}, {j}) pairs a node with itself; a matching pairs distinct nodes")
        for node in (i, j):
            if not 0 <= node < num_nodes:
                raise ValueError(f"pair ({i}, {j}) names node {node}, outside range({num_nodes})")
            if partner[node] != -1:
                raise ValueError(f"node {node} is paired twice; a matching pairs each node at most once")
        partner[i], partner[j] = j, i
    return partner
