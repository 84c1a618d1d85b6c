"""Where the run's nodes live: ``--nodes N`` laid over R ranks in contiguous blocks.

Rank r hosts nodes [r·⌊N/R⌋ + min(r, N mod R), …): the first N mod R ranks get one
node more. Node ids, not ranks, are what topologies, partitions and metrics name;
only the network and the records need to know which rank holds which node.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedgossip.errors import ConfigError

__all__ = ["Placement"]


@dataclass(frozen=True)
class Placement:
    """``nodes`` devices over ``ranks`` processes, in contiguous blocks."""

    nodes: int
    ranks: int

    def __post_init__(self) -> None:
        if self.ranks < 1:
            raise ValueError(f"a placement needs at least one rank, got {self.ranks}")
        if self.nodes < self.ranks:
            raise ConfigError(
                f"--nodes {self.nodes} is below the {self.ranks} ranks started: every rank hosts at "
                f"least one node; give --nodes {self.ranks} or more, or start at most {self.nodes} ranks"
            )

    def first(self, rank: int) -> int:
        """Return the first node rank ``rank`` hosts."""
        base, extra = divmod(self.nodes, self.ranks)
        return rank * base + min(rank, extra)

    def nodes_of(self, rank: int) -> range:
        """Return the nodes rank ``rank`` hosts, in order."""
        return range(self.first(rank), self.first(rank + 1))

    def rank_of(self, node: int) -> int:
        """Return the rank that hosts ``node``."""
        if not 0 <= node < self.nodes:
            raise ValueError(f"node {node} is outside the run's {self.nodes} nodes")
        base, extra = divmod(self.nodes, self.ranks)
        big = extra * (base + 1)  # the first `extra` ranks host base + 1 nodes each
        if node < big:
            return node // (base + 1)
        return extra + (node - big) // base

    def index_on_rank(self, node: int) -> int:
        """Return ``node``'s position among the nodes of its rank."""
        return node - self.first(self.rank_of(node))

    def hosted(self) -> list[int]:
        """Return every node, in rank order (which is node order)."""
        return list(range(self.nodes))

    def lost_nodes(self) -> list[int]:
        """Return the nodes lost with their ranks: none (see SurvivingPlacement)."""
        return []

    def record(self) -> list[int]:
        """Return the first node of every rank, then the node count: what run.json stores."""
        return [self.first(rank) for rank in range(self.ranks)] + [self.nodes]
