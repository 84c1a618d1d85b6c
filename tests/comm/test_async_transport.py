"""The asynchronous transport among the co-hosted nodes of one process, and async swarm over it."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from mpi4py import MPI

from fedgossip.algorithms import GossipContext
from fedgossip.algorithms.asynchronous import finish
from fedgossip.algorithms.swarm_async import OFFER, AsyncSwarm
from fedgossip.comm.async_transport import AsyncTransport
from fedgossip.comm.codec import Codec
from fedgossip.comm.network import NodeNetwork
from fedgossip.comm.placement import Placement
from fedgossip.comm.traffic import Traffic
from fedgossip.compress import COMPRESSORS
from fedgossip.compress.wire import packet_sender
from fedgossip.errors import WireError
from fedgossip.settings.link_spec import Link
from fedgossip.topology.base import make_topology

COUNT = 64


def swarm_nodes(nodes: int, compressor: str = "none", topology: str = "ring", link: Link | None = None):
    """Return the AsyncSwarm of every node of a one-process run, each with its own random model."""
    codec_of = {node: Codec(COMPRESSORS.create(compressor), node, COUNT, 7) for node in range(nodes)}
    network = NodeNetwork(MPI.COMM_SELF, Placement(nodes, 1), codec_of[0].max_packet, link)
    graph, shared, gossips = make_topology(topology, nodes, 0), {}, []
    for node in range(nodes):
        flat = torch.from_numpy(np.random.default_rng([7, node]).normal(size=COUNT).astype(np.float32))
        ctx = GossipContext(
            MPI.COMM_SELF, graph, codec_of[node], Traffic(), 7, np.full(nodes, 100), same_start=False,
            link=link, node=node, network=network, shared=shared,
        )  # fmt: skip
        gossips.append(AsyncSwarm(ctx, flat, np.random.default_rng([7, node, 6])))
    gossips[0].transport.open()
    return gossips


def interleave(gossips: list[AsyncSwarm], interactions: int, seed: int = 0) -> None:
    """Drive the nodes as the schedule does: round-robin bursts, a poll after every step, then finish."""
    draws = np.random.default_rng(seed)
    for _ in range(interactions):
        for gossip in gossips:
            for _ in range(int(draws.integers(0, 3))):
                gossip.steps += 1
                gossip.poll()
            gossip.wait_for_reply()
            gossip.offer(gossip.flat)
    finish(gossips)


def total(gossips, name: str) -> int:
    return sum(getattr(gossip.ctx.traffic, name) for gossip in gossips)


def test_uncompressed_co_hosted_swarm_preserves_the_mean_and_answers_every_offer():
    gossips = swarm_nodes(6, topology="erdos-renyi:p=0.6")
    before = np.mean([g.flat.numpy().astype(np.float64) for g in gossips], axis=0)
    interleave(gossips, 15)
    after = np.mean([g.flat.numpy().astype(np.float64) for g in gossips], axis=0)
    assert np.abs(after - before).max() < 1e-6
    assert [g.stats.interactions for g in gossips] == [15] * 6
    assert sum(g.stats.offers_served for g in gossips) == 6 * 15
    # every packet handed over in memory, counted like one on the wire
    sent, received, within = (total(gossips, f"bytes_{name}") for name in ("sent", "received", "within"))
    assert sent == received == within > 0


def test_compressed_co_hosted_swarm_keeps_both_ends_of_every_edge_identical():
    gossips = swarm_nodes(5, compressor="qsgd:bits=5")
    interleave(gossips, 12, seed=1)
    for gossip in gossips:
        for peer in gossip.neighbors:
            other = gossips[peer].references
            assert torch.equal(gossip.references.sent[peer], other.received[gossip.node])
            assert gossip.references.sent_sequence[peer] == other.received_sequence[gossip.node] > 0
    state = gossips[0].state_dict()  # at a consistent cut nothing is in flight
    assert state["stats"]["interactions"] == 12


@pytest.mark.timeout(30)  # a poll that served only the waiting node would wait forever
def test_a_node_waiting_for_a_co_hosted_partner_lets_the_partner_answer():
    # one process, two nodes: node 0's reply can only come from node 1, which never runs a step
    gossips = swarm_nodes(2)
    gossips[0].offer(gossips[0].flat)
    gossips[0].wait_for_reply()
    assert gossips[0].stats.interactions == 1 and gossips[1].stats.offers_served == 1


def test_a_saved_state_needs_every_offer_answered():
    gossips = swarm_nodes(3)
    gossips[0].offer(gossips[0].flat)
    with pytest.raises(RuntimeError, match="nothing is in flight"):
        gossips[1].state_dict()  # node 0's offer waits in its inbox


def _transport(nodes: int, link: Link | None = None) -> tuple[AsyncTransport, dict[int, list], dict]:
    network = NodeNetwork(MPI.COMM_SELF, Placement(nodes, 1), 1000, link)
    traffic = {node: Traffic() for node in range(nodes)}
    for node in range(nodes):
        network.attach(node, traffic[node])
    transport, handled = AsyncTransport(network), {node: [] for node in range(nodes)}
    for node in range(nodes):  # a handler notes the sender and the packet's mark
        transport.attach(node, lambda sender, buffer, to=handled[node]: to.append((sender, int(buffer[-1]))))
    transport.open()
    return transport, handled, traffic


def _packet(sender: int, mark: int) -> np.ndarray:
    codec = Codec(COMPRESSORS.create("none"), sender, 1)
    buffer, _ = codec.pack(torch.zeros(1), 0, OFFER)
    buffer[-1] = mark  # the payload's last byte, to tell packets apart
    assert packet_sender(buffer) == sender
    return buffer


def test_a_closed_node_keeps_its_packets_in_the_order_sent():
    transport, handled, traffic = _transport(3)
    for mark in (1, 2, 3):
        transport.send(1, 0, _packet(1, mark), 1)
    transport.send(2, 0, _packet(2, 9), 1)
    transport.poll(closed=(0,))
    assert handled[0] == [] and not transport.quiet(0)
    transport.poll()
    assert handled[0] == [(1, 1), (1, 2), (1, 3), (2, 9)] and transport.quiet(0)
    assert traffic[1].bytes_within == traffic[1].bytes_sent == 3 * _packet(1, 0).size
    assert traffic[0].bytes_received == 4 * _packet(1, 0).size


def test_an_emulated_link_holds_a_co_hosted_packet_until_its_delivery():
    transport, handled, traffic = _transport(2, Link(bandwidth_bps=float("inf"), latency_s=0.05))
    transport.send(0, 1, _packet(0, 5), 1)
    transport.poll()
    assert handled[1] == []
    time.sleep(0.06)
    transport.poll()
    assert handled[1] == [(0, 5)]
    assert 0.03 < traffic[1].link_seconds <= 0.06


def test_a_packet_from_a_node_that_is_no_neighbour_is_refused():
    gossips = swarm_nodes(5)  # a ring: nodes 0 and 2 are not neighbours
    gossips[0].transport.send(2, 0, _packet(2, 1), 1)
    with pytest.raises(WireError, match="node 2 is not a neighbour of node 0"):
        gossips[0].poll()
