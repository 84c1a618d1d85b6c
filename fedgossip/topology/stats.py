"""What a user asks about a graph: size, degrees, diameter and the spectral gap of its mixing matrix."""

from __future__ import annotations

from typing import Any

from fedgossip.topology.base import Topology
from fedgossip.topology.mixing import topology_spectral_gap

__all__ = ["topology_stats"]


def topology_stats(topology: Topology) -> dict[str, Any]:
    """Return the overview of ``topology`` as JSON-ready values.

    ``spectral_gap`` is that of the Metropolis mixing matrix (see
    :mod:`fedgossip.topology.mixing`; ``None`` where a huge graph's would not converge);
    ``diameter`` is ``None`` when disconnected.
    """
    degrees = topology.degrees
    return {
        "spec": topology.name,
        "nodes": topology.num_nodes,
        "edges": len(topology.edges),
        "degree_min": int(degrees.min()),
        "degree_max": int(degrees.max()),
        "diameter": topology.diameter() if topology.is_connected() else None,
        "spectral_gap": topology_spectral_gap(topology),
    }
