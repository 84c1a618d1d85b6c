"""Where the nodes live after ranks were lost: the run's placement, renumbered onto the survivors.

Shrinking the communicator to the surviving ranks (:mod:`fedgossip.comm.ulfm`) renumbers
them in order; every node keeps its id and its host, and the nodes of a lost rank have
no host any more (the repaired topology isolates them, so no one addresses them).
"""

from __future__ import annotations

from fedgossip.comm.placement import Placement

__all__ = ["SurvivingPlacement"]


class SurvivingPlacement:
    """``base`` (the run's placement, or an earlier survivors') on the ranks ``old_ranks`` kept, in order."""

    def __init__(self, base: Placement | SurvivingPlacement, old_ranks: list[int]):
        self.base = base
        self.old_ranks = list(old_ranks)  # the new rank r was rank old_ranks[r] of base
        self._new_rank = {old: new for new, old in enumerate(self.old_ranks)}
        self.nodes = base.nodes
        self.ranks = len(self.old_ranks)

    def nodes_of(self, rank: int) -> range:
        """Return the nodes rank ``rank`` (of the survivors) hosts, in order."""
        return self.base.nodes_of(self.old_ranks[rank])

    def rank_of(self, node: int) -> int:
        """Return the surviving rank that hosts ``node``; a lost node has none."""
        old = self.base.rank_of(node)
        if old not in self._new_rank:
            raise ValueError(f"node {node} was lost with its rank; nothing may be sent to it")
        return self._new_rank[old]

    def index_on_rank(self, node: int) -> int:
        """Return ``node``'s position among the nodes of its rank."""
        return self.base.index_on_rank(node)

    def hosted(self) -> list[int]:
        """Return every surviving node, in rank order (which is node order)."""
        return [node for rank in range(self.ranks) for node in self.nodes_of(rank)]

    def lost_nodes(self) -> list[int]:
        """Return the nodes no surviving rank hosts, ascending."""
        kept = set(self.hosted())
        return [node for node in range(self.nodes) if node not in kept]
