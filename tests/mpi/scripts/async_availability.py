"""Asynchronous swarm under --availability, driven by the real interaction code, over several ranks.

argv: nodes interactions availability-spec. The nodes are laid over the ranks in
contiguous blocks on a ring and hold different random models; each rank drives its nodes
with :func:`~fedgossip.run.interactions.interact` and
:class:`~fedgossip.run.away_windows.AwayWindows` (emulated local steps of 0-2 short
sleeps), then the termination. Checked, uncompressed then qsgd 5-bit:

- an away node's model does not move during its window, whatever its rank polls meanwhile
  (its packets wait), and it makes no offer;
- every offer goes to a neighbour the schedule has online in that window;
- every offer is answered by the end (those held for an away node too): the offers made
  equal the offers served, and no node made more than its online windows;
- uncompressed, the mean of all the models is preserved to float rounding; compressed,
  both ends of every edge hold bit-identical references and sequence numbers;
- a node the schedule never has online ends with its first model, having served no one.
"""

import sys
import time

import numpy as np
import torch
from _async_nodes import SEED, build, check_kept, mean
from _common import check, comm, rank, size

from fedgossip.algorithms.asynchronous import finish
from fedgossip.algorithms.swarm_async import AsyncSwarm
from fedgossip.comm.placement import Placement
from fedgossip.run.away_windows import AwayWindows
from fedgossip.run.interactions import interact
from fedgossip.settings.availability_spec import parse_availability
from fedgossip.topology.availability import AvailabilitySchedule
from fedgossip.topology.base import make_topology

nodes, interactions, spec = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
STEP_S = 0.0003
placement = Placement(nodes, size)
graph = make_topology("ring", nodes, SEED)
schedule = AvailabilitySchedule(parse_availability(spec), nodes, interactions, SEED)
mine = placement.nodes_of(rank)


class EmulatedNode:
    """What :func:`interact` asks of a node, with local steps that only take time."""

    def __init__(self, gossip: AsyncSwarm):
        self.id, self.gossip, self.privacy = gossip.node, gossip, None
        self.flat = gossip.flat
        self._steps = np.random.default_rng([SEED, gossip.node, 9])

    def end_round(self) -> None:
        pass

    def draw_steps(self) -> int:
        return int(self._steps.integers(0, 3))

    def train_privately(self, steps, each_step) -> None:
        for _ in range(steps):
            time.sleep(STEP_S)
            each_step()


def run(built: list[EmulatedNode]) -> None:
    transport = built[0].gossip.transport
    transport.open()
    windows = AwayWindows(schedule, transport, list(mine), paced=size > 1)
    for interaction in range(1, interactions + 1):
        windows.begin(interaction)
        away = {n.id: n.flat.clone() for n in built if not windows.is_online(n.id)}
        for n in built:
            before = n.gossip._pending
            interact(n, transport, lambda: None, windows)
            offered = n.gossip._pending
            if offered is not None and offered is not before:
                check(n.id not in away, f"node {n.id} offered while away in window {interaction}")
                check(windows.is_online(offered.partner), f"node {n.id} offered to away {offered.partner}")
        for node, model in away.items():  # every node of the rank had its turn, and polled meanwhile
            flat = built[mine.index(node)].flat
            check(torch.equal(flat, model), f"node {node} moved while away in window {interaction}")
    finish([n.gossip for n in built])
    transport.free()


online_windows = schedule.online_rounds()
for variant in ("uncompressed", "compressed"):
    gossips = build("none" if variant == "uncompressed" else "qsgd:bits=5", placement, graph)
    built = [EmulatedNode(g) for g in gossips]
    first = {n.id: n.flat.clone() for n in built}
    before = mean(gossips, nodes)
    run(built)
    counted = {n.id: (n.gossip.stats.interactions, n.gossip.stats.offers_served) for n in built}
    every = {node: pair for part in comm.allgather(counted) for node, pair in part.items()}
    made = sum(made for made, _ in every.values())
    check(made == sum(served for _, served in every.values()) > 0, f"{variant}: offers and serves {every}")
    for node, (made_by, served_by) in every.items():
        check(made_by <= online_windows[node], f"{variant}: node {node} made {made_by} offers")
        if online_windows[node] == 0:
            check(made_by == served_by == 0, f"{variant}: node {node}, never online, took part")
    for n in built:
        check(n.gossip._pending is None, f"{variant}: node {n.id} still waits for a reply")
        if online_windows[n.id] == 0:
            check(torch.equal(n.flat, first[n.id]), f"{variant}: node {n.id}, never online, moved")
    check_kept(gossips, before, nodes, compressed=variant == "compressed")
    comm.Barrier()
if rank == 0:
    print(f"ok {nodes} nodes on {size} ranks, {made} interactions")
