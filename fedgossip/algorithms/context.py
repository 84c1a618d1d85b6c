"""What an algorithm may use on its rank: the communicator, the graph, the codec and the counters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from mpi4py import MPI

from fedgossip.comm.codec import Codec
from fedgossip.comm.exchange import PeerExchange
from fedgossip.comm.link import Uplink, hold_until
from fedgossip.comm.traffic import Traffic
from fedgossip.settings.link_spec import Link
from fedgossip.topology.base import Topology

__all__ = ["GossipContext"]


@dataclass
class GossipContext:
    """Everything an algorithm may use; built once per run by the training loop.

    Nothing here belongs to one algorithm: an algorithm's own settings are parameters of its spec.
    """

    comm: MPI.Intracomm
    topology: Topology
    codec: Codec
    traffic: Traffic
    seed: int  # the run seed: draws that must agree across ranks derive from it (see round_rng)
    sample_counts: np.ndarray  # training samples held by each rank (0 for a server)
    # Every rank starts from the same model (built from the run seed), so public copies and
    # per-edge references can start as that model without a message; otherwise they start at 0.
    same_start: bool = True
    link: Link | None = None  # --link: emulated network; None: messages count as delivered at once

    def __post_init__(self) -> None:
        # One outgoing link per rank, shared by every exchange, so its messages queue behind each other.
        self.uplink = Uplink(self.link) if self.link is not None else None

    @property
    def rank(self) -> int:
        return self.comm.Get_rank()

    @property
    def size(self) -> int:
        return self.comm.Get_size()

    def exchange(self) -> PeerExchange:
        return PeerExchange(self.comm, self.traffic, max_bytes=self.codec.max_packet, uplink=self.uplink)

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
