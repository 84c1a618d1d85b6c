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
from _async_nodes import build, check_kept, mean
from _common import check, comm, rank, size
from mpi4py import MPI

from fedgossip.algorithms.asynchronous import finish
from fedgossip.algorithms.swarm_async import AsyncSwarm
from fedgossip.comm.placement import Placement
from fedgossip.topology.base import make_topology

nodes, interactions, topology = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
SEED, STEP_S = 11, 0.0002
placement = Placement(nodes, size)
graph = make_topology(topology, nodes, SEED)
mine = placement.nodes_of(rank)


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


for variant in ("uncompressed", "compressed"):
    gossips = build("none" if variant == "uncompressed" else "qsgd:bits=5", placement, graph)
    before = mean(gossips, nodes)
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
    check_kept(gossips, before, nodes, compressed=variant == "compressed")
    comm.Barrier()
if rank == 0:
    print(f"ok {nodes} nodes on {size} ranks")
