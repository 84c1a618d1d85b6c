"""What an algorithm may use on its node: the network, the graph, the codec and the counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from mpi4py import MPI

from fedgossip.byzantine.aggregators import Aggregator
from fedgossip.byzantine.attacks import Attack
from fedgossip.comm.codec import Codec
from fedgossip.comm.link import Uplink, hold_until
from fedgossip.comm.network import NodeNetwork
from fedgossip.comm.placement import Placement
from fedgossip.comm.traffic import Traffic
from fedgossip.settings.link_spec import Link
from fedgossip.topology.availability import AvailabilitySchedule
from fedgossip.topology.base import Topology

__all__ = ["GossipContext"]


@dataclass
class GossipContext:
    """Everything an algorithm may use on one node; built once per node by the engine.

    Nothing here belongs to one algorithm: an algorithm's own settings are parameters of its spec.
    ``node`` and ``nodes`` default to the rank and the world size (one node per rank); the
    network is then the node's own, otherwise the one its rank shares among its nodes.
    """

    comm: MPI.Intracomm  # the rank's communicator; messages go through ``network``, which duplicates it
    topology: Topology
    codec: Codec
    traffic: Traffic
    seed: int  # the run seed: draws that must agree across nodes derive from it (see round_rng)
    sample_counts: np.ndarray  # training samples held by each node (0 for a server)
    # Every node starts from the same model (built from the run seed), so public copies and
    # per-edge references can start as that model without a message; otherwise they start at 0.
    same_start: bool = True
    link: Link | None = None  # --link: emulated network; None: messages count as delivered at once
    node: int | None = None  # this node's id; None: the rank
    network: NodeNetwork | None = None  # None: one of its own, for a rank that hosts one node
    # What the co-hosted nodes of a rank may share to save work (comp-ams decodes the gathered
    # packets once per rank, not once per node); keyed by the algorithm.
    shared: dict[str, Any] = field(default_factory=dict)
    # A vectorized run with several nodes on this rank and no --link: co-hosted nodes may mix
    # their models as one tensor product where that changes no bit a packet would carry
    # (dpsgd uncompressed: algorithms/cohosted_mixing.py), bytes counted as if sent.
    stacked_gossip: bool = False
    # Faulty neighbours (--attack, --robust): this node's attack if it is an attacker, the
    # attacking nodes (they know each other), and how an honest node combines (None: the mean).
    attack: Attack | None = None
    attackers: frozenset[int] = frozenset()
    aggregator: Aggregator | None = None
    attack_noise: torch.Generator | None = None  # the attacker's own seeded stream (gaussian)
    # --availability: which nodes are online in each round, alike on every rank; None: all, always.
    availability: AvailabilitySchedule | None = None

    def __post_init__(self) -> None:
        if self.node is None:
            self.node = self.comm.Get_rank()
        if self.network is None:
            size = self.comm.Get_size()
            self.network = NodeNetwork(self.comm, Placement(size, size), self.codec.max_packet, self.link)
        if self.node not in self.network.endpoints:
            self.network.attach(self.node, self.traffic)
        # One outgoing link per node, shared by every exchange, so its messages queue behind each other.
        self.uplink: Uplink | None = self.network.endpoints[self.node].uplink

    def online(self, round_index: int) -> np.ndarray | None:
        """Return round ``round_index``'s online mask over the nodes (rounds count from 1); None: all."""
        if self.availability is None:
            return None
        return self.availability.online(round_index - 1)  # the schedule's rows count from 0

    def is_online(self, node: int, round_index: int) -> bool:
        """Say whether ``node`` trains and communicates in round ``round_index``."""
        online = self.online(round_index)
        return online is None or bool(online[node])

    @property
    def rank(self) -> int:
        """Return this node's id (the name predates co-hosted nodes: it is the node, not the process)."""
        return self.node

    @property
    def size(self) -> int:
        """Return the number of nodes in the run."""
        return self.network.placement.nodes

    @property
    def alive(self) -> int:
        """Return the number of nodes still in the run (all of them, unless ranks were lost)."""
        return len(self.network.placement.hosted())

    @property
    def lost(self) -> frozenset[int]:
        """Return the nodes lost with their ranks (--on-failure continue); empty while none was."""
        return frozenset(self.network.placement.lost_nodes())

    def hold_collective(self, started: float, seconds: float) -> None:
        """Stretch a collective begun at wall time ``started`` to the ``seconds`` the link would take."""
        if self.link is not None:
            self.traffic.link_seconds += hold_until(started + seconds)

    @property
    def compressed(self) -> bool:
        """Whether packets lose information, so models must travel as deltas against references."""
        return not self.codec.compressor.lossless

    def initial_reference(self, flat: torch.Tensor) -> torch.Tensor:
        """Return what every reference to a model starts as: the shared start, or zeros."""
        return flat.detach().clone() if self.same_start else torch.zeros_like(flat)

    def forge(self, own: torch.Tensor, seen: dict[int, torch.Tensor], receiver: int | None) -> torch.Tensor:
        """Return what this attacking node sends ``receiver`` in place of ``own``.

        ``seen``: the neighbours' vectors as this node last received them (or its copies of
        them); the other attackers' are left out, since attackers know each other.
        """
        honest = [vector for peer, vector in seen.items() if peer not in self.attackers]
        return self.attack.forge(own, honest, seen.get(receiver), self.attack_noise)
