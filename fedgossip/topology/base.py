"""Communication graphs: the :class:`Topology` value, the builder contract and :func:`make_topology`.

A topology is an undirected simple graph on the MPI ranks ``0..n-1``; an edge means
the two ranks exchange models directly. Builders are plugins of the
``fedgossip.topologies`` group (``ring``, ``random-regular:degree=4``, ...).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from fedgossip.errors import ConfigError, TopologyError
from fedgossip.registry import Plugin, Registry, check_params
from fedgossip.specs import Spec

__all__ = ["Topology", "TopologyBuilder", "TOPOLOGIES", "make_topology", "check_params"]

_DISTANCE_CELLS = 4_000_000  # at most this many BFS distances held at once while measuring the diameter


@dataclass(frozen=True)
class Topology:
    """An undirected graph without self loops on nodes ``0..num_nodes-1``.

    ``edges`` holds each edge once as ``(i, j)`` with ``i < j``, sorted; build from
    arbitrary pairs with :meth:`from_edges`. ``name`` is the canonical spec that made it.
    """

    num_nodes: int
    edges: tuple[tuple[int, int], ...]
    name: str = ""
    # internal: compressed adjacency (neighbours of i are _indices[_indptr[i]:_indptr[i+1]], sorted)
    _indptr: np.ndarray = field(init=False, repr=False, compare=False)
    _indices: np.ndarray = field(init=False, repr=False, compare=False)
    _neighbors: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = self.num_nodes
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"a topology needs an integer number of nodes >= 1, got {n!r}")
        pairs = np.asarray(self.edges, dtype=np.int64).reshape(-1, 2)
        if pairs.size:
            low, high = pairs[:, 0], pairs[:, 1]
            ordered = bool(np.all(low < high))
            # lexicographic strict increase of (i, j) means sorted and free of duplicates
            increasing = bool(np.all((np.diff(low) > 0) | ((np.diff(low) == 0) & (np.diff(high) > 0))))
            if not (ordered and increasing and low.min() >= 0 and high.max() < n):
                raise ValueError(
                    "edges must be sorted (i, j) pairs with 0 <= i < j < num_nodes and no duplicates; "
                    "build the topology with Topology.from_edges to normalise them"
                )
        heads = np.concatenate([pairs[:, 0], pairs[:, 1]])
        tails = np.concatenate([pairs[:, 1], pairs[:, 0]])
        order = np.lexsort((tails, heads))
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(heads, minlength=n), out=indptr[1:])
        indices = tails[order]
        neighbors = tuple(tuple(indices[indptr[i] : indptr[i + 1]].tolist()) for i in range(n))
        object.__setattr__(self, "num_nodes", int(n))
        object.__setattr__(self, "edges", tuple((int(i), int(j)) for i, j in pairs.tolist()))
        object.__setattr__(self, "_indptr", indptr)
        object.__setattr__(self, "_indices", indices)
        object.__setattr__(self, "_neighbors", neighbors)

    @classmethod
    def from_edges(
        cls, num_nodes: int, pairs: Iterable[tuple[int, int]] | np.ndarray, name: str = ""
    ) -> Topology:
        """Build a topology from pairs in any order; ``(j, i)`` and repeats fold into one edge.

        A self loop or a node outside ``range(num_nodes)`` is a ``ValueError``: builders
        must not produce them, and user files are checked with line numbers before this.
        """
        both = np.asarray(pairs if isinstance(pairs, np.ndarray) else list(pairs), dtype=np.int64)
        both = both.reshape(-1, 2)
        bad = (both[:, 0] == both[:, 1]) | (both.min(axis=1) < 0) | (both.max(axis=1) >= num_nodes)
        if bad.any():
            i, j = both[np.argmax(bad)].tolist()
            raise ValueError(f"edge ({i}, {j}) is a self loop or leaves range({num_nodes})")
        low, high = both.min(axis=1), both.max(axis=1)
        scale = max(int(num_nodes), 1)
        keys = np.unique(low * scale + high)  # sorted, and repeats folded, in one step
        return cls(num_nodes, np.stack([keys // scale, keys % scale], axis=1), name)  # type: ignore[arg-type]

    def neighbors(self, i: int) -> tuple[int, ...]:
        """Return the neighbours of node ``i``, sorted."""
        return self._neighbors[i]

    def degree(self, i: int) -> int:
        """Return the number of neighbours of node ``i``."""
        return len(self._neighbors[i])

    @property
    def degrees(self) -> np.ndarray:
        """Degree of every node, int64 ``[num_nodes]``."""
        return np.diff(self._indptr)

    def components(self) -> list[tuple[int, ...]]:
        """Return the connected components as sorted node tuples, ordered by their smallest node."""
        labels = self._component_labels()
        firsts = np.unique(labels).tolist()  # each component's smallest node: node 0's comes first
        return [tuple(np.flatnonzero(labels == first).tolist()) for first in firsts]

    def is_connected(self) -> bool:
        """Return whether every node can reach every other (a single node is connected)."""
        return bool((self._component_labels() == 0).all())

    def _component_labels(self) -> np.ndarray:
        """Label every node with the smallest node of its component, by breadth-first search.

        numpy rather than scipy's ``connected_components``: every rank checks its topology,
        and scipy.sparse would cost each of them ~0.3 s and ~35 MB to import.
        """
        labels = np.full(self.num_nodes, -1, dtype=np.int64)
        for first in range(self.num_nodes):
            if labels[first] >= 0:
                continue
            labels[first] = first
            frontier = np.array([first])
            while frontier.size:  # one hop further each time round
                spans = zip(self._indptr[frontier].tolist(), self._indptr[frontier + 1].tolist(), strict=True)
                reached = np.unique(np.concatenate([self._indices[start:stop] for start, stop in spans]))
                frontier = reached[labels[reached] < 0]
                labels[frontier] = first
        return labels

    def diameter(self) -> int:
        """Return the largest hop distance between two nodes.

        Hop counts from every node come from scipy's unweighted shortest paths (a BFS
        in effect), a chunk of sources at a time to bound memory; fine for a few
        thousand nodes. A disconnected graph has no finite diameter and raises
        ``TopologyError``.
        """
        from scipy.sparse.csgraph import shortest_path

        n = self.num_nodes
        if n == 1:
            return 0
        if len(self.edges) == n * (n - 1) // 2:
            return 1  # complete: skip n BFS runs over ~n²/2 edges
        if not self.is_connected():
            raise TopologyError(f"topology {self.name!r} is disconnected, so its diameter is infinite")
        graph = self._adjacency()
        chunk = max(1, _DISTANCE_CELLS // n)
        longest = 0
        for start in range(0, n, chunk):
            sources = np.arange(start, min(start + chunk, n))
            hops = shortest_path(graph, method="D", directed=False, unweighted=True, indices=sources)
            longest = max(longest, int(hops.max()))
        return longest

    def _adjacency(self):
        from scipy.sparse import csr_array

        n = self.num_nodes
        ones = np.ones(len(self._indices), dtype=np.int8)
        return csr_array((ones, self._indices, self._indptr), shape=(n, n))


class TopologyBuilder(Plugin, ABC):
    """Build a communication graph for a given number of nodes.

    The constructor validates the spec's parameters; :meth:`build` refuses node
    counts the graph cannot have (odd n·degree, a prime n for a torus) with a
    ``TopologyError`` that names the rule and the fix, before any work, and must
    finish in bounded time: a random graph is redrawn a bounded number of times.
    """

    @abstractmethod
    def build(self, num_nodes: int, rng: np.random.Generator) -> Topology:
        """Return the graph on ``num_nodes`` nodes; random choices come only from ``rng``."""

    def _topology(self, num_nodes: int, pairs: Iterable[tuple[int, int]] | np.ndarray) -> Topology:
        """Fold ``pairs`` into a topology named by this builder's canonical spec."""
        return Topology.from_edges(num_nodes, pairs, self.spec or self.name or type(self).__name__.lower())


TOPOLOGIES: Registry[TopologyBuilder] = Registry("topologies", TopologyBuilder)


def make_topology(spec: str | Spec, num_nodes: int, seed: int) -> Topology:
    """Build the topology ``spec`` on ``num_nodes`` nodes and refuse a disconnected one.

    Every rank calls this on its own with the same spec, node count and seed and must
    get the same graph, since no one broadcasts it: the only randomness is a generator
    seeded from ``seed`` alone (never the rank, the clock or global state).
    """
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, (int, np.integer)) or num_nodes < 1:
        raise ConfigError(f"a topology needs at least 1 node, got {num_nodes!r}; run with 1 or more ranks")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"the topology seed must be an integer >= 0, got {seed!r}; set --topology-seed")
    builder = TOPOLOGIES.create(spec)
    topology = builder.build(int(num_nodes), np.random.default_rng(seed))
    if topology.num_nodes != num_nodes:
        raise RuntimeError(
            f"topology bug: {builder.spec} built {topology.num_nodes} nodes, asked for {num_nodes}"
        )
    parts = topology.components()
    if len(parts) > 1:
        cut_off = parts[1]
        listed = ", ".join(map(str, cut_off[:8])) + (", ..." if len(cut_off) > 8 else "")
        raise TopologyError(
            f"topology {topology.name!r} on {num_nodes} nodes is disconnected: {len(parts)} components "
            f"(nodes {listed} cannot reach node 0), so their models never mix; add edges joining the "
            f"components or choose a connected topology"
        )
    return topology
