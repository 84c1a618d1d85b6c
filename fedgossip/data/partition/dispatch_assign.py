"""Capacity-constrained dispatch: every point on ``P`` distinct nodes, every node between two sizes.

Dick et al. (2017), "Data driven resource allocation for distributed learning", §3,
send each point to its ``P`` nearest clusters *subject to* every machine holding
between ``L·Pn/N`` and ``U·Pn/N`` points. The exact problem is a min-cost flow; here
it is solved approximately in three phases, each in bounded time and with a proof
that it ends:

1. proposals: each point proposes to its nearest untried nodes; each node keeps its
   nearest proposers up to its upper size (no eviction, so at most ``N`` rounds);
2. repair: a point still short of ``P`` nodes is given one by a single swap
   (:func:`_augment`), which always exists while the point is short;
3. lift: a node below its lower size takes the cheapest points of nodes above theirs
   (:func:`_lift`).

No randomness: the same distances give the same assignment (ties mostly go to the lower
index; where only the cheapest few are sorted, the selection decides, deterministically).
"""

from __future__ import annotations

import numpy as np

__all__ = ["assign"]


def assign(distances: np.ndarray, replication: int, lower: int, upper: int) -> np.ndarray:
    """Return ``[points, replication]`` distinct nodes per point, nearest first where possible.

    ``distances[q, j]`` is the cost of storing point ``q`` on node ``j``. Every node
    ends with between ``lower`` and ``upper`` points. The caller checks feasibility:
    ``replication <= nodes``, ``nodes·lower <= replication·points <= nodes·upper``
    and ``lower <= upper``.
    """
    state = _Assignment(np.asarray(distances, dtype=np.float64), replication)
    _propose(state, upper)
    for point in np.flatnonzero(state.have < replication):
        while state.have[point] < replication:
            _augment(state, int(point), upper)
    _lift(state, lower)
    return state.slots


class _Assignment:
    """Which nodes hold which points, kept consistent in four views as points move."""

    def __init__(self, distances: np.ndarray, replication: int):
        n, num_nodes = distances.shape
        self.distances = distances
        self.by_node = np.ascontiguousarray(distances.T)  # a node's distances as one contiguous row
        self.slots = np.full((n, replication), -1, dtype=np.int64)  # the nodes of each point
        self.have = np.zeros(n, dtype=np.int64)  # filled slots of each point
        self.on = np.zeros((num_nodes, n), dtype=bool)  # on[j, q]: node j holds point q
        self.load = np.zeros(num_nodes, dtype=np.int64)

    def place(self, points: np.ndarray, nodes: np.ndarray) -> None:
        """Put each ``points[i]`` on ``nodes[i]``; a point may come several times, with distinct nodes."""
        by = np.lexsort((nodes, points))
        points, nodes = points[by], nodes[by]
        within = np.arange(len(points)) - np.searchsorted(points, points)
        self.slots[points, self.have[points] + within] = nodes
        self.have += np.bincount(points, minlength=len(self.have))
        self.on[nodes, points] = True
        self.load += np.bincount(nodes, minlength=len(self.load))

    def move(self, points: np.ndarray, sources: np.ndarray, target: int) -> None:
        """Move distinct ``points`` from ``sources`` (one node each) to ``target``, which lacks them."""
        slot = np.argmax(self.slots[points] == sources[:, None], axis=1)
        self.slots[points, slot] = target
        self.on[sources, points] = False
        self.on[target, points] = True
        self.load -= np.bincount(sources, minlength=len(self.load))
        self.load[target] += len(points)


def _propose(state: _Assignment, upper: int) -> None:
    """Fill slots in rounds: a point proposes to its next nearest nodes, a node keeps the nearest.

    Every round each active point uses up at least one of its ``N`` nodes and never
    proposes to a node twice, so there are at most ``N`` rounds and a point's nodes
    are distinct. Accepted points are never evicted.
    """
    distances, replication = state.distances, state.slots.shape[1]
    n, num_nodes = distances.shape
    order = np.argsort(distances, axis=1, kind="stable")
    tried = np.zeros(n, dtype=np.int64)
    active = np.arange(n)
    while active.size:
        reps = np.minimum(replication - state.have[active], num_nodes - tried[active])
        point = np.repeat(active, reps)
        rank = tried[point] + np.arange(len(point)) - np.repeat(np.cumsum(reps) - reps, reps)
        node = order[point, rank]
        tried[active] += reps
        # each node keeps its nearest proposers, as many as it has room for
        by = np.lexsort((point, distances[point, node], node))
        node_sorted = node[by]
        position = np.arange(len(by)) - np.searchsorted(node_sorted, node_sorted)
        kept = by[position < upper - state.load[node_sorted]]
        state.place(point[kept], node[kept])
        active = active[(state.have[active] < replication) & (tried[active] < num_nodes)]


def _augment(state: _Assignment, point: int, upper: int) -> None:
    """Give ``point`` one more node, moving at most one other point.

    If a node without ``point`` has room, ``point`` goes to the nearest such. Otherwise
    every node without ``point`` is full, and every node with room holds ``point``
    (one has room: the sizes sum to less than ``P·n <= N·upper``). Take the nearest
    full node ``j`` without ``point``: for each node ``m`` with room, some point on ``j``
    is missing from ``m`` -- were all ``upper`` points of ``j`` on ``m``, then ``m``
    would hold them and ``point``, one more than ``upper``. Moving the one that adds
    the least distance from ``j`` to its ``m`` frees a place on ``j`` for ``point``.
    Each call fills one slot, so there are fewer than ``P·n`` calls, each ``O(n)``.
    """
    held, room = state.on[:, point], state.load < upper
    distance = state.distances[point]
    if (room & ~held).any():
        nearest_free = np.argmin(np.where(room & ~held, distance, np.inf))
        state.place(np.array([point]), np.array([nearest_free]))
        return
    full = int(np.argmin(np.where(held, np.inf, distance)))
    best = (np.inf, -1, -1)  # (extra distance, mover, node with room)
    for target in np.flatnonzero(room):  # fewer than P of them: all hold ``point``
        movers = np.flatnonzero(state.on[full] & ~state.on[target])
        extra = state.by_node[target, movers] - state.by_node[full, movers]
        cheapest = int(np.argmin(extra)) if movers.size else -1
        if cheapest >= 0 and extra[cheapest] < best[0]:
            best = (extra[cheapest], int(movers[cheapest]), int(target))
    if best[1] < 0:
        raise RuntimeError("partitioner bug: no point can make room for a short one")
    state.move(np.array([best[1]]), np.array([full]), best[2])
    state.place(np.array([point]), np.array([full]))


def _lift(state: _Assignment, lower: int) -> None:
    """Bring every node up to ``lower`` points by moving points from nodes above it.

    A node short of ``lower`` takes the points with the least extra distance from
    donors above ``lower`` that it does not hold yet, in batches. A batch is never
    empty: the sizes sum to ``P·n >= N·lower``, so with one node short another is
    above ``lower``, and that donor holds a point the short node lacks (else the short
    node would be the larger). Donors stop at ``lower`` and each move cuts the total
    shortfall by one, so this ends after at most ``N·lower`` moves.
    """
    distances, slots = state.distances, state.slots
    for node in np.flatnonzero(state.load < lower):
        while (need := lower - state.load[node]) > 0:
            spare = state.load - lower
            point, slot = np.nonzero((spare[slots] > 0) & ~state.on[node][:, None])
            extra = distances[point, node] - distances[point, slots[point, slot]]
            if len(extra) > 4 * need:  # sort only the cheapest few; they include the cheapest of all
                few = np.argpartition(extra, 4 * need)[: 4 * need]
                point, slot, extra = point[few], slot[few], extra[few]
            by = np.lexsort((point, extra))
            by = by[np.sort(np.unique(point[by], return_index=True)[1])]  # each point once, cheapest
            donor = slots[point[by], slot[by]]
            keep = _rank_within(donor) < spare[donor]  # no donor below lower
            state.move(point[by][keep][:need], donor[keep][:need], int(node))


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """Return each entry's position among the entries of its group, in the given order."""
    by = np.argsort(groups, kind="stable")
    sorted_groups = groups[by]
    rank = np.empty(len(groups), dtype=np.int64)
    rank[by] = np.arange(len(groups)) - np.searchsorted(sorted_groups, sorted_groups)
    return rank
