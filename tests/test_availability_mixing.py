"""Mixing under --availability: the mean over each round's online set is kept, offline nodes keep their model.

Co-hosted nodes on one rank (COMM_SELF) run the algorithms' real conversations round by round,
from different random models, so neither invariant could hold by every model being the same.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mpi4py import MPI

from fedgossip.algorithms import ALGORITHMS, GossipContext
from fedgossip.algorithms.catch_up import exact_packet_bytes
from fedgossip.comm.codec import Codec
from fedgossip.comm.network import NodeNetwork
from fedgossip.comm.placement import Placement
from fedgossip.comm.traffic import Traffic
from fedgossip.compress import COMPRESSORS
from fedgossip.settings.availability_spec import BernoulliAvailability
from fedgossip.topology.availability import AvailabilitySchedule
from fedgossip.topology.base import make_topology

COUNT = 40
NODES = 8
ROUNDS = 6


def start(node: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng([5, node]).normal(size=COUNT).astype(np.float32))


def rounds_of(
    algorithm: str,
    topology: str,
    stacked: bool = False,
    p: float = 0.6,
    compressor: str = "none",
    members=None,
):
    """Yield (online mask, models before, models after) for each round of ``algorithm`` under bernoulli:p.

    ``members``: a list that receives each node's (algorithm, model), to look inside them.
    """
    schedule = AvailabilitySchedule(BernoulliAvailability(p=p), NODES, ROUNDS, seed=11)
    codec_of = lambda node: Codec(COMPRESSORS.create(compressor), node, COUNT, 11)  # noqa: E731
    # CHOCO's catch-up sends public copies uncompressed
    network = NodeNetwork(MPI.COMM_SELF, Placement(NODES, 1), exact_packet_bytes(COUNT))
    graph, shared = make_topology(topology, NODES, 0), {}
    members = [] if members is None else members
    for node in range(NODES):
        flat = start(node)
        ctx = GossipContext(
            MPI.COMM_SELF, graph, codec_of(node), Traffic(), 11, np.full(NODES, 10), same_start=False,
            node=node, network=network, shared=shared, stacked_gossip=stacked, availability=schedule,
        )  # fmt: skip
        made = ALGORITHMS.create(algorithm)
        made.setup(ctx, flat)
        members.append((made, flat))
    for round_index in range(1, ROUNDS + 1):
        before = torch.stack([flat.clone() for _, flat in members])
        network.converse({node: a.conversation(flat, round_index) for node, (a, flat) in enumerate(members)})
        online = torch.from_numpy(schedule.online(round_index - 1).copy())
        yield online, before, torch.stack([flat.clone() for _, flat in members])
    network.free()


CASES = [
    ("dpsgd", "torus", False, "none"),
    ("dpsgd", "torus", True, "none"),  # the co-hosted product
    ("dpsgd", "ring", False, "none"),
    ("swarm", "complete", False, "none"),
    ("dpsgd", "torus", False, "qsgd:bits=4"),  # CHOCO-gossip: copies frozen while away, caught up
    ("dpsgd", "ring", False, "uniform:bits=2"),
]


@pytest.mark.parametrize(("algorithm", "topology", "stacked", "compressor"), CASES)
def test_the_online_mean_is_kept_and_offline_models_do_not_move(algorithm, topology, stacked, compressor):
    moved = 0
    for online, before, after in rounds_of(algorithm, topology, stacked, compressor=compressor):
        assert 0 < online.sum() < NODES  # p=0.6 over 8 nodes and seed 11: every round mixed, and partial
        torch.testing.assert_close(after[online].mean(0), before[online].mean(0), rtol=0, atol=1e-6)
        assert torch.equal(after[~online], before[~online]), "an offline node's model changed"
        moved += int((after[online] != before[online]).any(dim=1).sum())
    assert moved > ROUNDS  # the online nodes did mix


def test_the_stacked_product_equals_the_packets_under_availability():
    for (_, _, packets), (_, _, product) in zip(
        rounds_of("dpsgd", "torus", stacked=False), rounds_of("dpsgd", "torus", stacked=True), strict=True
    ):
        torch.testing.assert_close(product, packets, rtol=0, atol=1e-6)


def test_allreduce_averages_the_online_nodes_only():
    for online, before, after in rounds_of("allreduce", "complete"):
        mean = before[online].double().mean(0).float()
        torch.testing.assert_close(after[online], mean.expand(int(online.sum()), -1), rtol=0, atol=1e-6)
        assert torch.equal(after[~online], before[~online])


def test_fedavg_samples_online_clients_only():
    schedule = AvailabilitySchedule(BernoulliAvailability(p=0.5), NODES, ROUNDS, seed=3, server=0)
    codec = Codec(COMPRESSORS.create("none"), 0, COUNT, 3)
    network = NodeNetwork(MPI.COMM_SELF, Placement(NODES, 1), codec.max_packet)
    shared = {}
    ctx = GossipContext(
        MPI.COMM_SELF, make_topology("star", NODES, 0), codec, Traffic(), 3, np.full(NODES, 10),
        node=0, network=network, shared=shared, availability=schedule,
    )  # fmt: skip
    fedavg = ALGORITHMS.create("fedavg:client_fraction=0.5")
    fedavg.setup(ctx, start(0))
    for round_index in range(1, ROUNDS + 1):
        online = schedule.online(round_index - 1)
        chosen = fedavg.selected(round_index)
        assert online[chosen].all()
        assert len(chosen) == min(int(online[1:].sum()), 4)  # half of the 7 clients, rounded, if online
    network.free()


def test_fedavg_holds_an_offline_clients_downlink_until_it_returns():
    schedule = AvailabilitySchedule(BernoulliAvailability(p=0.5), NODES, ROUNDS, seed=3, server=0)
    codec_of = lambda node: Codec(COMPRESSORS.create("none"), node, COUNT, 3)  # noqa: E731
    network = NodeNetwork(MPI.COMM_SELF, Placement(NODES, 1), codec_of(0).max_packet)
    graph, shared, members = make_topology("star", NODES, 0), {}, []
    for node in range(NODES):
        flat = start(0)  # fedavg starts every node from the same global model
        ctx = GossipContext(
            MPI.COMM_SELF, graph, codec_of(node), Traffic(), 3, np.full(NODES, 10), node=node,
            network=network, shared=shared, availability=schedule,
        )  # fmt: skip
        made = ALGORITHMS.create("fedavg")
        made.setup(ctx, flat)
        members.append((made, flat))
    held = 0
    for round_index in range(1, ROUNDS + 1):
        for node, (_, flat) in enumerate(members):  # "training": each chosen client moves its model
            if node and members[0][0].trains(node, round_index):
                flat.add_(float(node + round_index))
        before = [flat.clone() for _, flat in members]
        network.converse({node: a.conversation(flat, round_index) for node, (a, flat) in enumerate(members)})
        server_model = members[0][1]
        for node in range(1, NODES):
            flat = members[node][1]
            # the schedule's row round_index is the next round; after the last one nobody returns
            back_next = round_index < ROUNDS and schedule.is_online(node, round_index)
            if schedule.is_online(node, round_index - 1) or back_next:
                assert torch.equal(flat, server_model)  # current before it trains again
            else:
                assert torch.equal(flat, before[node])  # away: its model stays as it was
                held += 1
    assert held > 0
    network.free()


def test_choco_copies_agree_at_both_ends_of_every_edge_after_each_round():
    """What each node holds as x̂_j equals x̂_j itself, for every neighbour that was online with it since."""
    members: list = []
    caught_up = 0
    for online, _, _ in rounds_of("dpsgd", "ring", compressor="qsgd:bits=4", members=members):
        for node, (algorithm, _) in enumerate(members):
            state = algorithm._intermittent
            for peer, copy in state.copies.neighbours.items():
                mine = members[peer][0]._intermittent.copies.own
                if state.behind[peer]:  # j moved while this node was away: stale until they meet
                    continue
                assert torch.equal(copy, mine), f"node {node}'s copy of node {peer} differs"
                caught_up += int(bool(online[node] and online[peer]))
    assert caught_up > ROUNDS  # edges were live, so the check compared copies that had moved
