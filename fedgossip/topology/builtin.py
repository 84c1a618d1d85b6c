"""The deterministic graphs: ring, torus, complete, hypercube, exponential and star.

None of them uses the random generator; each refuses a node count it cannot be
built on, naming a node count or a topology that works instead.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from fedgossip.errors import TopologyError
from fedgossip.topology.base import Topology, TopologyBuilder

__all__ = ["Ring", "Torus", "Complete", "Hypercube", "Exponential", "Star", "torus_sides"]


class Ring(TopologyBuilder):
    """Connect node i to i±1 (mod n): degree 2, diameter n/2, the slowest mixing of all.

    Two nodes share one edge and three nodes form a triangle.
    """

    def build(self, num_nodes: int, rng: np.random.Generator) -> Topology:
        """Return the cycle 0-1-...-(n-1)-0."""
        if num_nodes == 1:
            return self._topology(1, [])
        return self._topology(num_nodes, ((i, (i + 1) % num_nodes) for i in range(num_nodes)))


def torus_sides(num_nodes: int) -> tuple[int, int]:
    """Return the most nearly square ``(rows, cols)`` with ``rows * cols == num_nodes``, rows <= cols."""
    rows = max(d for d in range(1, math.isqrt(num_nodes) + 1) if num_nodes % d == 0)
    return rows, num_nodes // rows


class Torus(TopologyBuilder):
    """Lay the nodes on a wrapped-around 2-D grid, as square as n allows (12 → 3×4): degree 4.

    Node r·cols + c talks to its grid neighbours up, down, left and right. A side
    of 2 folds up and down into one edge (n = 4 is a 4-cycle, degree 2).
    """

    def build(self, num_nodes: int, rng: np.random.Generator) -> Topology:
        """Return the rows × cols torus; a prime node count has no grid and is refused."""
        if num_nodes == 1:
            return self._topology(1, [])
        rows, cols = torus_sides(num_nodes)
        if rows == 1:
            below, above = _composite_below(num_nodes), _composite_above(num_nodes)
            nearby = f"{below} or {above}" if below else str(above)
            raise TopologyError(
                f"torus needs a node count with two factors >= 2 to lay out a grid, but {num_nodes} "
                f"is prime; use ring for {num_nodes} nodes, or run {nearby} nodes"
            )
        pairs = []
        for r, c in itertools.product(range(rows), range(cols)):
            node = r * cols + c
            pairs.append((node, ((r + 1) % rows) * cols + c))
            pairs.append((node, r * cols + (c + 1) % cols))
        return self._topology(num_nodes, pairs)


def _is_composite(n: int) -> bool:
    return n >= 4 and torus_sides(n)[0] > 1


def _composite_below(n: int) -> int | None:
    return next((m for m in range(n - 1, 3, -1) if _is_composite(m)), None)


def _composite_above(n: int) -> int:
    return next(m for m in itertools.count(max(n + 1, 4)) if _is_composite(m))


class Complete(TopologyBuilder):
    """Connect every pair of nodes: one gossip round averages exactly, at n−1 messages per node."""

    def build(self, num_nodes: int, rng: np.random.Generator) -> Topology:
        """Return the complete graph K_n."""
        return self._topology(num_nodes, np.column_stack(np.triu_indices(num_nodes, 1)))


class Hypercube(TopologyBuilder):
    """Connect nodes whose ids differ in one bit: degree and diameter log2 n; n a power of two."""

    def build(self, num_nodes: int, rng: np.random.Generator) -> Topology:
        """Return the hypercube of dimension log2 n."""
        if num_nodes & (num_nodes - 1):
            below = 1 << (num_nodes.bit_length() - 1)
            raise TopologyError(
                f"hypercube needs a power-of-two node count, got {num_nodes}; run {below} or "
                f"{2 * below} nodes, or use exponential (similar degree, any node count)"
            )
        bits = range(num_nodes.bit_length() - 1)
        return self._topology(num_nodes, ((i, i ^ (1 << k)) for i in range(num_nodes) for k in bits))


class Exponential(TopologyBuilder):
    """Connect node i to i ± 2^k (mod n) for every 2^k < n: degree about 2·log2 n, any n.

    The static exponential graph of Ying et al. 2021 ("Exponential Graph is Provably
    Efficient for Decentralized Deep Training"), made undirected. Offsets that
    coincide mod n (2^k = n/2, or 2^a + 2^b = n) give one edge, not two.
    """

    def build(self, num_nodes: int, rng: np.random.Generator) -> Topology:
        """Return the graph with edges {i, i + 2^k mod n}, k = 0..floor(log2(n−1))."""
        if num_nodes == 1:
            return self._topology(1, [])
        # 2^k <= n-1 for k <= floor(log2(n-1)), so i + 2^k never wraps onto i (no self loop);
        # the edge {i, i - 2^k} is {j, j + 2^k} for j = i - 2^k, so one direction suffices
        offsets = [1 << k for k in range((num_nodes - 1).bit_length())]
        return self._topology(
            num_nodes, ((i, (i + s) % num_nodes) for i in range(num_nodes) for s in offsets)
        )


class Star(TopologyBuilder):
    """Connect every node to node 0, the hub: diameter 2, all traffic through one rank."""

    def build(self, num_nodes: int, rng: np.random.Generator) -> Topology:
        """Return the star with hub 0."""
        return self._topology(num_nodes, ((0, i) for i in range(1, num_nodes)))
