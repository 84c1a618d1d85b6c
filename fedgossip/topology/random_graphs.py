"""Seeded random graphs: random regular and Erdős–Rényi.

Both draw only from the generator :func:`~fedgossip.topology.base.make_topology`
seeds with the shared topology seed, so every rank draws the same graph. Both end
in bounded time: an unlucky draw is redrawn at most ``_ATTEMPTS`` times (random
regular) or refused at once (Erdős–Rényi), never retried until lucky.
"""

from __future__ import annotations

import math

import numpy as np

from fedgossip.errors import TopologyError
from fedgossip.specs import REQUIRED, Param
from fedgossip.topology.base import Topology, TopologyBuilder, check_params

__all__ = ["RandomRegular", "ErdosRenyi"]

_ATTEMPTS = 100  # draws of a random regular graph before giving up; for degree >= 3 one almost always works
_ROUNDS = 1000  # re-pairings of left-over edge ends within one draw; a few usually suffice


class RandomRegular(TopologyBuilder):
    """Draw a connected graph where every node has exactly ``degree`` neighbours.

    Random regular graphs are expanders with high probability: with degree 4 they
    mix almost as fast as the complete graph at a fraction of its traffic.
    """

    params = (Param("degree", int, 4, "neighbours of every node", ge=1),)

    def __init__(self, degree: int = 4):
        check_params(type(self), degree=degree)
        self.degree = int(degree)

    def build(self, num_nodes: int, rng: np.random.Generator) -> Topology:
        """Return a connected ``degree``-regular graph, or refuse one that cannot exist."""
        n, d = num_nodes, self.degree
        spec = self.spec or f"random-regular:degree={d}"
        problems = []
        if d >= n:
            lower = f"lower degree to at most {n - 1} (the complete graph) or " if n > 2 else ""
            problems.append(f"{spec} needs more than {d} nodes, got {n}; {lower}run at least {d + 1} nodes")
        if n * d % 2:
            problems.append(
                f"{spec} on {n} nodes is impossible: every edge has two ends, so n·degree must be "
                f"even, but it is {n * d}; use an even degree or an even number of nodes"
            )
        if d == 1 and n > 2:
            problems.append(
                f"{spec} pairs {n} nodes off into separate edges, which is never connected; "
                f"use degree 2 or more"
            )
        if problems:
            raise TopologyError("; ".join(problems))

        if d == n - 1:
            return self._topology(n, np.column_stack(np.triu_indices(n, 1)))
        if d == 2:
            # A 2-regular graph is a union of cycles; conditioned on being connected it is a
            # Hamiltonian cycle, uniform over all of them: a ring through a random permutation.
            order = rng.permutation(n).tolist()
            return self._topology(n, zip(order, order[1:] + order[:1], strict=True))
        if 2 * d > n - 1:
            # Dense: take the complement of a sparse regular graph. Connected without a check:
            # two non-adjacent nodes have d + d >= n neighbours among the n - 2 others, so share one.
            sparse = _pairing(n, n - 1 - d, rng, _ATTEMPTS)
            if sparse is not None:
                return self._topology(
                    n, ((i, j) for i in range(n) for j in range(i + 1, n) if (i, j) not in sparse)
                )
        else:
            for _ in range(_ATTEMPTS):
                edges = _pairing(n, d, rng, 1)
                if edges is not None:
                    topology = self._topology(n, edges)
                    if topology.is_connected():
                        return topology
        raise TopologyError(
            f"{spec}: no connected {d}-regular graph on {n} nodes found in {_ATTEMPTS} draws; "
            f"change --topology-seed, pick another degree, or use ring/torus/exponential"
        )


def _pairing(n: int, d: int, rng: np.random.Generator, attempts: int) -> set[tuple[int, int]] | None:
    """Return the edges of a random simple ``d``-regular graph, or ``None`` after ``attempts`` failures.

    Steger & Wormald (1999), "Generating random regular graphs quickly": pair up the
    n·d edge ends at random, keep the pairs that form new edges, and re-pair only the
    ends left over. An attempt fails when no leftover pair can form a new edge, or
    after ``_ROUNDS`` re-pairings, so it always ends.
    """
    for _ in range(attempts):
        edges: set[tuple[int, int]] = set()
        ends = np.repeat(np.arange(n), d)
        for _ in range(_ROUNDS):
            rng.shuffle(ends)
            left = np.zeros(n, dtype=np.int64)
            for a, b in zip(ends[0::2].tolist(), ends[1::2].tolist(), strict=True):
                a, b = min(a, b), max(a, b)
                if a != b and (a, b) not in edges:
                    edges.add((a, b))
                else:
                    left[a] += 1
                    left[b] += 1
            if not left.any():
                return edges
            if not _can_pair(np.flatnonzero(left).tolist(), edges):
                break
            ends = np.repeat(np.arange(n), left)
    return None


def _can_pair(waiting: list[int], edges: set[tuple[int, int]]) -> bool:
    """Return whether two of the ``waiting`` nodes are distinct and not yet joined."""
    return any((a, b) not in edges for k, a in enumerate(waiting) for b in waiting[k + 1 :])


class ErdosRenyi(TopologyBuilder):
    """Join every pair of nodes independently with probability ``p`` (G(n, p)).

    Connected with high probability once p is well above ln(n)/n. A disconnected
    draw is refused, not redrawn, so the graph a seed names never depends on retries.
    """

    params = (Param("p", float, REQUIRED, "probability of each edge", gt=0, le=1),)

    def __init__(self, p: float):
        check_params(type(self), p=p)
        self.p = float(p)

    def build(self, num_nodes: int, rng: np.random.Generator) -> Topology:
        """Return one draw of G(n, p); refuse it when it is disconnected."""
        n = num_nodes
        pairs = []
        # one row of the upper triangle at a time: O(n) memory instead of an n×n matrix
        for i in range(n - 1):
            for j in np.flatnonzero(rng.random(n - 1 - i) < self.p).tolist():
                pairs.append((i, i + 1 + j))
        topology = self._topology(n, pairs)
        parts = topology.components()
        if len(parts) > 1:
            threshold = math.log(n) / n
            raise TopologyError(
                f"{topology.name} drew a disconnected graph on {n} nodes ({len(parts)} components); "
                f"raise p (G(n, p) on {n} nodes is connected with high probability above about "
                f"ln(n)/n = {threshold:.3g}; try p={min(1.0, 2 * threshold):.3g}) "
                f"or change --topology-seed"
            )
        return topology
