"""Asynchronous swarm with several nodes per rank under mpiexec: the invariants of async_swarm.py, per node.

argv: nodes interactions topology. The nodes are laid over the ranks in contiguous
blocks and hold different random models; each rank drives its nodes as the
interaction schedule does (round-robin bursts of 0-2 emulated local steps, a poll
after every step, then the termination barrier). Two variants:

- uncompressed: the mean of all the models is preserved to float rounding;
- compressed (qsgd 4-bit): both ends of every edge, co-hosted or not, hold
  bit-identical references and sequence numbers.

Either way every node made exactly ``interactions`` interactions, the offers served
add up to them, every byte sent was received, and the co-hosted edges were served
in memory (``bytes_within``), the others by MPI.
"""

import sys
import time

import numpy as np
import torch
from _common import check, comm, rank, size
from mpi4py import MPI

from fedgossip.algorithms import GossipContext
from fedgossip.algorithms.asynchronous import finish
from fedgossip.algorithms.swarm_async import AsyncSwarm
from fedgossip.comm.codec import Codec
from fedgossip.comm.network import NodeNetwork
from fedgossip.comm.placement import Placement
from fedgossip.comm.traffic import Traffic
from fedgossip.compress import COMPRESSORS
from fedgossip.topology.base import make_topology

nodes, interactions, topology = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
COUNT, SEED, STEP_S = 300, 11, 0.0002
placement = Placement(nodes, size)
graph = make_topology(topology, nodes, SEED)
mine = placement.nodes_of(rank)


def build(compressor: str) -> list[AsyncSwarm]:
    torch.set_num_threads(1)
    codecs = {node: Codec(COMPRESSORS.create(compressor), node, COUNT, SEED) for node in mine}
    network = NodeNetwork(comm, placement, codecs[mine[0]].max_packet)
    shared, gossips = {}, []
    for node in mine:
        flat = torch.from_numpy(np.random.default_rng([SEED, node]).normal(size=COUNT).astype(np.float32))
        ctx = GossipContext(
            comm, graph, codecs[node], Traffic(), SEED, np.full(nodes, 100), same_start=False,
            node=node, network=network, shared=shared,
        )  # fmt: skip
        gossips.append(AsyncSwarm(ctx, flat, np.random.default_rng([SEED, node, 6])))
    return gossips


def mean(gossips: list[AsyncSwarm]) -> np.ndarray:
    total = np.sum([g.flat.numpy().astype(np.float64) for g in gossips], axis=0)
    comm.Allreduce(MPI.IN_PLACE, total, op=MPI.SUM)
    return total / nodes


def run(gossips: list[AsyncSwarm]) -> None:
    transport = gossips[0].transport
    transport.open()
    draws = np.random.default_rng([SEED, rank])
    for _ in range(interactions):
        for gossip in gossips:
            for _ in range(int(draws.integers(0, 3))):
                time.sleep(STEP_S)
                gossip.steps += 1
                transport.poll()
            gossip.wait_for_reply()
            gossip.offer(gossip.flat)
    finish(gossips)
    transport.free()


def references(gossips: list[AsyncSwarm]) -> dict:
    """Return every edge end of this rank: (node, peer) -> (sent, received, their sequence numbers)."""
    return {
        (g.node, peer): (
            g.references.sent[peer].numpy(), g.references.received[peer].numpy(),
            g.references.sent_sequence[peer], g.references.received_sequence[peer],
        )
        for g in gossips for peer in g.neighbors
    }  # fmt: skip


for variant in ("uncompressed", "compressed"):
    gossips = build("none" if variant == "uncompressed" else "qsgd:bits=5")
    before = mean(gossips)
    run(gossips)
    counted = [(g.stats.interactions, g.stats.offers_served) for g in gossips]
    every = [pair for ranks in comm.allgather(counted) for pair in ranks]
    check([made for made, _ in every] == [interactions] * nodes, f"{variant}: interactions {every}")
    check(sum(served for _, served in every) == nodes * interactions, f"{variant}: offers served {every}")
    names = ("bytes_sent", "bytes_received", "bytes_within")
    sent, received, within = (comm.allreduce(sum(getattr(g.ctx.traffic, n) for g in gossips)) for n in names)
    check(sent == received > 0, f"{variant}: {sent} bytes sent, {received} received")
    across = any(placement.rank_of(a) != placement.rank_of(b) for a in mine for b in graph.neighbors(a))
    across = comm.allreduce(across, op=MPI.LOR)
    check(0 < within < sent if across else within == sent, f"{variant}: {within} of {sent} bytes within")
    if variant == "uncompressed":
        error = float(np.abs(mean(gossips) - before).max())
        check(error < 1e-6, f"the mean moved by {error:.3g}")
    else:
        ends = {key: value for part in comm.allgather(references(gossips)) for key, value in part.items()}
        for (node, peer), (sent_ref, _, sent_seq, _) in ends.items():
            _, received_ref, _, received_seq = ends[(peer, node)]
            check(np.array_equal(sent_ref, received_ref), f"edge {node}→{peer}: references differ")
            check(sent_seq == received_seq, f"edge {node}→{peer}: sequence {sent_seq} ≠ {received_seq}")
    comm.Barrier()
if rank == 0:
    print(f"ok {nodes} nodes on {size} ranks")
