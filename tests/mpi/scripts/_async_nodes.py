"""Shared by the asynchronous MPI scripts: a rank's co-hosted AsyncSwarm nodes over random models."""

from __future__ import annotations

import numpy as np
import torch
from _common import check, comm
from mpi4py import MPI

from fedgossip.algorithms import GossipContext
from fedgossip.algorithms.swarm_async import AsyncSwarm
from fedgossip.comm.codec import Codec
from fedgossip.comm.network import NodeNetwork
from fedgossip.comm.placement import Placement
from fedgossip.comm.traffic import Traffic
from fedgossip.compress import COMPRESSORS
from fedgossip.topology.base import Topology

COUNT, SEED = 300, 11


def build(compressor: str, placement: Placement, graph: Topology) -> list[AsyncSwarm]:
    """Return this rank's nodes, each with its own random model, sharing one transport."""
    torch.set_num_threads(1)
    mine = placement.nodes_of(comm.Get_rank())
    codecs = {node: Codec(COMPRESSORS.create(compressor), node, COUNT, SEED) for node in mine}
    network = NodeNetwork(comm, placement, codecs[mine[0]].max_packet)
    shared, gossips = {}, []
    for node in mine:
        flat = torch.from_numpy(np.random.default_rng([SEED, node]).normal(size=COUNT).astype(np.float32))
        ctx = GossipContext(
            comm, graph, codecs[node], Traffic(), SEED, np.full(placement.nodes, 100), same_start=False,
            node=node, network=network, shared=shared,
        )  # fmt: skip
        gossips.append(AsyncSwarm(ctx, flat, np.random.default_rng([SEED, node, 6])))
    return gossips


def mean(gossips: list[AsyncSwarm], nodes: int) -> np.ndarray:
    """Return the mean of every rank's models (collective)."""
    total = np.sum([g.flat.numpy().astype(np.float64) for g in gossips], axis=0)
    comm.Allreduce(MPI.IN_PLACE, total, op=MPI.SUM)
    return total / nodes


def check_edge_ends(gossips: list[AsyncSwarm]) -> None:
    """Check both ends of every edge hold bit-identical references and sequence numbers (collective)."""
    mine = {
        (g.node, peer): (
            g.references.sent[peer].numpy(), g.references.received[peer].numpy(),
            g.references.sent_sequence[peer], g.references.received_sequence[peer],
        )
        for g in gossips for peer in g.neighbors
    }  # fmt: skip
    ends = {key: value for part in comm.allgather(mine) for key, value in part.items()}
    for (node, peer), (sent_ref, _, sent_seq, _) in ends.items():
        _, received_ref, _, received_seq = ends[(peer, node)]
        check(np.array_equal(sent_ref, received_ref), f"edge {node}→{peer}: references differ")
        check(sent_seq == received_seq, f"edge {node}→{peer}: sequence {sent_seq} ≠ {received_seq}")


def check_kept(gossips: list[AsyncSwarm], before: np.ndarray, nodes: int, compressed: bool) -> None:
    """Check what gossip keeps (collective): uncompressed, the mean ``before``; compressed, both edge ends."""
    if compressed:
        check_edge_ends(gossips)
        return
    error = float(np.abs(mean(gossips, nodes) - before).max())
    check(error < 1e-6, f"the mean moved by {error:.3g}")
