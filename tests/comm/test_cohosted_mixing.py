"""Uncompressed dpsgd among co-hosted nodes as one product: the packet path's result and byte counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mpi4py import MPI

from fedgossip.algorithms import ALGORITHMS, GossipContext
from fedgossip.comm.codec import Codec
from fedgossip.comm.network import NodeNetwork
from fedgossip.comm.placement import Placement
from fedgossip.comm.traffic import Traffic
from fedgossip.compress import COMPRESSORS
from fedgossip.topology.base import make_topology

COUNT = 50
COUNTERS = ("bytes_sent", "bytes_received", "bytes_within", "messages_sent", "fp32_bytes_sent")


def gossip(nodes: int, topology: str, stacked: bool, rounds: int = 3):
    """Run ``rounds`` of dpsgd on ``nodes`` co-hosted nodes; return their models, traffic and shared state."""
    network = NodeNetwork(
        MPI.COMM_SELF, Placement(nodes, 1), Codec(COMPRESSORS.create("none"), 0, COUNT).max_packet
    )
    graph, shared, members = make_topology(topology, nodes, 0), {}, []
    for node in range(nodes):
        flat = torch.from_numpy(np.random.default_rng([9, node]).normal(size=COUNT).astype(np.float32))
        ctx = GossipContext(
            MPI.COMM_SELF, graph, Codec(COMPRESSORS.create("none"), node, COUNT, 9), Traffic(), 9,
            np.full(nodes, 10), same_start=False, node=node, network=network, shared=shared,
            stacked_gossip=stacked,
        )  # fmt: skip
        algorithm = ALGORITHMS.create("dpsgd")
        algorithm.setup(ctx, flat)
        members.append((algorithm, ctx, flat))
    for round_index in range(1, rounds + 1):
        network.converse({ctx.node: a.conversation(flat, round_index) for a, ctx, flat in members})
    network.free()
    return [flat for *_, flat in members], [ctx.traffic for _, ctx, _ in members], shared


@pytest.mark.parametrize(("topology", "nodes"), [("ring", 6), ("torus", 12), ("complete", 5)])
def test_the_product_gives_the_packets_result_and_counts_the_same_bytes(topology, nodes):
    packets, packet_traffic, unused = gossip(nodes, topology, stacked=False)
    product, product_traffic, shared = gossip(nodes, topology, stacked=True)
    assert not unused and shared, "the stacked run never built its co-hosted product"
    for node in range(nodes):
        torch.testing.assert_close(product[node], packets[node], rtol=0, atol=1e-6)
        for name in COUNTERS:
            assert getattr(product_traffic[node], name) == getattr(packet_traffic[node], name), name
    assert product_traffic[0].bytes_within == product_traffic[0].bytes_sent > 0
    # W is doubly stochastic: the product keeps the mean model too
    start = torch.stack(
        [
            torch.from_numpy(np.random.default_rng([9, n]).normal(size=COUNT).astype(np.float32))
            for n in range(nodes)
        ]
    )
    torch.testing.assert_close(torch.stack(product).mean(0), start.mean(0), rtol=0, atol=1e-6)
    # and it mixes: the models moved towards each other
    assert torch.stack(product).std(0).mean() < 0.8 * start.std(0).mean()
