"""The graph after lost nodes: each gap bridged by a path of the lost node's surviving neighbours."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fedgossip.topology.base import make_topology
from fedgossip.topology.repair import bridge_lost_nodes


def test_a_ring_closes_over_the_gap():
    ring = make_topology("ring", 8, seed=0)
    bridged = bridge_lost_nodes(ring, [3])
    assert bridged.neighbors(3) == ()
    assert bridged.neighbors(2) == (1, 4) and bridged.neighbors(4) == (2, 5)
    assert len(bridged.edges) == 7  # the 6 ring edges kept and the bridge 2–4


def test_adjacent_losses_bridge_across_both():
    bridged = bridge_lost_nodes(make_topology("ring", 8, seed=0), [5, 6])
    assert bridged.neighbors(4) == (3, 7) and bridged.neighbors(7) == (0, 4)


def test_a_star_without_its_centre_becomes_a_path_of_its_leaves():
    star = make_topology("star", 5, seed=0)  # node 0 is the centre
    bridged = bridge_lost_nodes(star, [0])
    assert bridged.edges == ((1, 2), (2, 3), (3, 4))


@settings(max_examples=60, deadline=None)
@given(
    spec=st.sampled_from(["ring", "torus", "star", "erdos-renyi:p=0.6", "exponential"]),
    nodes=st.sampled_from([4, 6, 8, 12, 16, 24]),  # torus needs a grid
    data=st.data(),
)
def test_survivors_stay_connected_and_lost_nodes_isolated(spec, nodes, data):
    graph = make_topology(spec, nodes, seed=3)
    lost = data.draw(st.sets(st.integers(0, nodes - 1), max_size=nodes - 2))
    bridged = bridge_lost_nodes(graph, lost)
    survivors = [i for i in range(nodes) if i not in lost]
    assert all(bridged.neighbors(i) == () for i in lost)
    # every surviving edge is kept, and new edges join survivors only
    kept = {edge for edge in graph.edges if not (set(edge) & lost)}
    assert kept <= set(bridged.edges)
    assert all(not (set(edge) & lost) for edge in bridged.edges)
    # connected among the survivors: a search from one reaches all
    seen, frontier = {survivors[0]}, [survivors[0]]
    while frontier:
        for peer in bridged.neighbors(frontier.pop()):
            if peer not in seen:
                seen.add(peer)
                frontier.append(peer)
    assert seen == set(survivors)
