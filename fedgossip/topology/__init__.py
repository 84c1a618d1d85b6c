"""Communication graphs: topologies, Metropolis mixing weights, spectral gap, random matchings.

Topologies are plugins of the ``fedgossip.topologies`` group; build one with
:func:`make_topology`, which every rank calls with the same seed to get the same graph.
"""

from fedgossip.topology.base import TOPOLOGIES, Topology, TopologyBuilder, make_topology
from fedgossip.topology.matching import partner_of, random_matching, round_matching
from fedgossip.topology.mixing import metropolis_row, metropolis_weights, spectral_gap

__all__ = [
    "TOPOLOGIES",
    "Topology",
    "TopologyBuilder",
    "make_topology",
    "metropolis_weights",
    "metropolis_row",
    "spectral_gap",
    "random_matching",
    "round_matching",
    "partner_of",
]
