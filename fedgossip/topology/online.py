"""The communication graph restricted to the nodes online in a round (``--availability``).

The subgraph keeps every node's index and drops each edge with an offline end, so an
offline node is isolated: its Metropolis row is the identity row (it keeps its model,
and nobody mixes it in), while the online nodes' weights are Metropolis weights
recomputed for the degrees they have among online nodes. The matrix stays symmetric
and doubly stochastic, so one mixing step preserves the mean over the online set.
"""

from __future__ import annotations

import numpy as np

from fedgossip.topology.base import Topology

__all__ = ["online_subgraph", "online_metropolis_row"]


def online_subgraph(topology: Topology, online: np.ndarray) -> Topology:
    """Return ``topology`` with only the edges whose two ends are online.

    ``online`` is a bool vector over the nodes (a row of the availability schedule).
    The subgraph may be disconnected: gossip then mixes within each online component,
    which still preserves the online mean; no edge is invented to reconnect it.
    """
    online = np.asarray(online, dtype=bool)
    if online.shape != (topology.num_nodes,):
        raise ValueError(f"expecting an online mask of shape ({topology.num_nodes},), got {online.shape}")
    kept = tuple((i, j) for i, j in topology.edges if online[i] and online[j])
    return Topology(topology.num_nodes, kept, name=f"{topology.name} (online)" if topology.name else "")


def online_metropolis_row(topology: Topology, online: np.ndarray, i: int) -> dict[int, float]:
    """Return node ``i``'s row of the online subgraph's Metropolis matrix as ``{node: weight}``.

    What one node needs for x_i ← Σ_j W_ij x_j in a round, without building the subgraph
    or the n×n matrix: degrees count online neighbours only. An offline ``i`` gets
    ``{i: 1.0}``, it keeps its model; offline neighbours are left out of an online row.
    """
    if not online[i]:
        return {i: 1.0}

    def online_degree(node: int) -> int:
        return sum(1 for k in topology.neighbors(node) if online[k])

    d_i = online_degree(i)
    row = {j: 1.0 / (1.0 + max(d_i, online_degree(j))) for j in topology.neighbors(i) if online[j]}
    row[i] = 1.0 - sum(row.values())
    return dict(sorted(row.items()))
