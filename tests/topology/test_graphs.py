"""The graphs: each built-in's shape, the random ones' guarantees, edge-list files, and refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedgossip.errors import ConfigError, TopologyError
from fedgossip.topology import TOPOLOGIES, Topology, make_topology, random_graphs
from fedgossip.topology.builtin import torus_sides
from fedgossip.topology.random_graphs import RandomRegular

BUILTIN = ("ring", "torus", "complete", "hypercube", "exponential", "star")


class Untouchable:
    """A generator stand-in that fails when used: proves a refusal came before any work."""

    def __getattr__(self, name):
        raise AssertionError(f"rng.{name} was used before the request was checked")


def neighbour_sets(topology: Topology) -> dict[int, set[int]]:
    return {i: set(topology.neighbors(i)) for i in range(topology.num_nodes)}


def hop_diameter(topology: Topology) -> int:
    """Diameter by boolean matrix powers, independent of the BFS under test."""
    n = topology.num_nodes
    adjacency = np.eye(n, dtype=bool)
    for i, j in topology.edges:
        adjacency[i, j] = adjacency[j, i] = True
    reach, hops = np.eye(n, dtype=bool), 0
    while not reach.all():
        reach = (reach.astype(int) @ adjacency.astype(int)) > 0
        hops += 1
    return hops


def test_every_topology_is_registered_through_entry_points():
    assert set(TOPOLOGIES.available()) == {*BUILTIN, "random-regular", "erdos-renyi", "file"}


@pytest.mark.parametrize("spec", BUILTIN)
@pytest.mark.parametrize("n", [4, 16, 64])
def test_edges_are_sorted_unique_pairs_and_neighbours_symmetric(spec, n):
    topology = make_topology(spec, n, seed=0)
    assert all(0 <= i < j < n for i, j in topology.edges)
    assert list(topology.edges) == sorted(set(topology.edges))
    for i, near in neighbour_sets(topology).items():
        assert list(topology.neighbors(i)) == sorted(near)
        assert all(i in topology.neighbors(j) for j in near)
    assert topology.degrees.sum() == 2 * len(topology.edges)


@pytest.mark.parametrize("n", [4, 5, 16, 101])
def test_ring_has_degree_two_and_diameter_half_n(n):
    ring = make_topology("ring", n, seed=0)
    assert (ring.degrees == 2).all()
    assert ring.diameter() == n // 2


def test_small_rings_are_an_edge_and_a_triangle():
    assert make_topology("ring", 2, seed=0).edges == ((0, 1),)
    assert make_topology("ring", 3, seed=0).edges == ((0, 1), (0, 2), (1, 2))


@pytest.mark.parametrize("n", [1, 2, 4, 16, 64])
def test_hypercube_has_degree_and_diameter_log2_n(n):
    cube = make_topology("hypercube", n, seed=0)
    assert (cube.degrees == int(math.log2(n))).all()
    assert cube.diameter() == int(math.log2(n))
    assert all(bin(i ^ j).count("1") == 1 for i, j in cube.edges)


@pytest.mark.parametrize("n", [2, 5, 9])
def test_complete_graph_has_degree_n_minus_one(n):
    complete = make_topology("complete", n, seed=0)
    assert (complete.degrees == n - 1).all() and complete.diameter() == 1


@pytest.mark.parametrize(
    ("n", "sides"), [(9, (3, 3)), (12, (3, 4)), (20, (4, 5)), (30, (5, 6)), (64, (8, 8))]
)
def test_torus_is_near_square_with_degree_four(n, sides):
    assert torus_sides(n) == sides
    torus = make_topology("torus", n, seed=0)
    assert (torus.degrees == 4).all()
    assert torus.diameter() == sides[0] // 2 + sides[1] // 2


def test_torus_of_four_is_a_four_cycle():
    assert (make_topology("torus", 4, seed=0).degrees == 2).all()


@pytest.mark.parametrize("n", [2, 7, 13])
def test_torus_refuses_a_prime_node_count_and_suggests_ring(n):
    with pytest.raises(TopologyError, match=rf"{n} is prime; use ring for {n} nodes, or run"):
        make_topology("torus", n, seed=0)


@pytest.mark.parametrize("n", range(1, 41))
def test_exponential_joins_i_to_i_plus_minus_powers_of_two(n):
    powers = [2**k for k in range(math.floor(math.log2(n - 1)) + 1)] if n > 1 else []
    expected = {i: {(i + s * p) % n for p in powers for s in (1, -1)} for i in range(n)}
    assert neighbour_sets(make_topology("exponential", n, seed=0)) == expected


def test_star_has_node_zero_as_hub():
    star = make_topology("star", 10, seed=0)
    assert star.neighbors(0) == tuple(range(1, 10))
    assert all(star.neighbors(i) == (0,) for i in range(1, 10))
    assert star.diameter() == 2


def test_hypercube_refuses_other_node_counts():
    with pytest.raises(TopologyError, match="power-of-two node count, got 12; run 8 or 16 nodes"):
        make_topology("hypercube", 12, seed=0)


@pytest.mark.parametrize("spec", [*BUILTIN, "erdos-renyi:p=0.5"])
def test_a_single_node_has_no_edges_and_is_connected(spec):
    alone = make_topology(spec, 1, seed=0)
    assert alone.edges == () and alone.is_connected() and alone.diameter() == 0


@given(n=st.integers(2, 24), p=st.sampled_from([0.2, 0.4, 0.8]), seed=st.integers(0, 10**6))
@settings(max_examples=40, deadline=None)
def test_diameter_matches_matrix_powers(n, p, seed):
    try:
        topology = make_topology(f"erdos-renyi:p={p}", n, seed)
    except TopologyError:
        return
    assert topology.diameter() == hop_diameter(topology)


def test_from_edges_folds_reversed_and_repeated_pairs():
    folded = Topology.from_edges(4, [(1, 0), (0, 1), (2, 3), (3, 2), (1, 2)])
    assert folded.edges == ((0, 1), (1, 2), (2, 3))


@pytest.mark.parametrize("edges", [((1, 0),), ((0, 1), (0, 1)), ((0, 4),), ((1, 2), (0, 1))])
def test_topology_refuses_unnormalised_edges(edges):
    with pytest.raises(ValueError, match="from_edges"):
        Topology(4, edges)


def test_diameter_of_a_disconnected_graph_is_an_error():
    split = Topology.from_edges(4, [(0, 1), (2, 3)], name="split")
    assert not split.is_connected() and split.components() == [(0, 1), (2, 3)]
    with pytest.raises(TopologyError, match="disconnected"):
        split.diameter()


# random regular ------------------------------------------------------------------------------


def regular_is_possible(n: int, d: int) -> bool:
    return d < n and n * d % 2 == 0 and not (d == 1 and n > 2)


@given(n=st.integers(1, 40), d=st.integers(1, 12), seed=st.integers(0, 10**6))
@settings(max_examples=80, deadline=None)
def test_random_regular_is_regular_and_connected_or_refused(n, d, seed):
    spec = f"random-regular:degree={d}"
    if not regular_is_possible(n, d):
        with pytest.raises(TopologyError):
            make_topology(spec, n, seed)
        return
    graph = make_topology(spec, n, seed)
    assert (graph.degrees == d).all() and graph.is_connected()


@pytest.mark.parametrize(
    ("n", "d", "message"), [(5, 3, "n·degree must be even"), (4, 4, "more than 4 nodes")]
)
def test_random_regular_refuses_impossible_requests_before_any_work(n, d, message):
    with pytest.raises(TopologyError, match=message):
        RandomRegular(degree=d).build(n, Untouchable())


def test_random_regular_reports_every_problem_at_once():
    with pytest.raises(TopologyError, match=r"more than 5 nodes.*n·degree must be even"):
        RandomRegular(degree=5).build(3, Untouchable())


def test_random_regular_degree_one_is_refused_beyond_two_nodes():
    with pytest.raises(TopologyError, match="never connected; use degree 2 or more"):
        make_topology("random-regular:degree=1", 6, seed=0)
    assert make_topology("random-regular:degree=1", 2, seed=0).edges == ((0, 1),)


def test_random_regular_gives_up_after_a_bounded_number_of_draws(monkeypatch):
    calls = []
    monkeypatch.setattr(random_graphs, "_pairing", lambda *args: calls.append(args) or None)
    with pytest.raises(TopologyError, match="change --topology-seed"):
        make_topology("random-regular:degree=3", 20, seed=0)
    assert len(calls) == random_graphs._ATTEMPTS


def test_random_regular_parameter_is_validated():
    with pytest.raises(ConfigError, match="degree='0': must be >= 1"):
        make_topology("random-regular:degree=0", 8, seed=0)
    with pytest.raises(ConfigError, match="must be >= 1"):
        RandomRegular(degree=0)


@pytest.mark.parametrize("spec", ["random-regular:degree=3", "random-regular:degree=2", "erdos-renyi:p=0.3"])
def test_same_seed_same_graph_other_seed_other_graph(spec):
    first, again = make_topology(spec, 30, seed=5), make_topology(spec, 30, seed=5)
    assert first == again
    assert any(make_topology(spec, 30, seed=s).edges != first.edges for s in range(6, 10))


def test_default_degree_appears_in_the_canonical_name():
    assert make_topology("random-regular", 10, seed=0).name == "random-regular:degree=4"


# Erdős–Rényi -----------------------------------------------------------------------------------


def test_erdos_renyi_with_tiny_p_is_refused_with_the_fix():
    with pytest.raises(TopologyError, match=r"disconnected.*raise p.*change --topology-seed"):
        make_topology("erdos-renyi:p=0.001", 50, seed=0)


def test_erdos_renyi_with_p_one_is_complete():
    assert (make_topology("erdos-renyi:p=1", 12, seed=3).degrees == 11).all()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("erdos-renyi", "missing required parameter 'p'"),
        ("erdos-renyi:p=0", "must be > 0"),
        ("erdos-renyi:p=1.5", "<= 1"),
    ],
)
def test_erdos_renyi_p_is_validated(spec, message):
    with pytest.raises(ConfigError, match=message):
        make_topology(spec, 8, seed=0)


# make_topology -----------------------------------------------------------------------------------


def test_unknown_topology_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown topology 'moebius'; known: complete, erdos-renyi, exp"):
        make_topology("moebius", 8, seed=0)


def test_zero_nodes_is_refused():
    with pytest.raises(ConfigError, match="at least 1 node"):
        make_topology("ring", 0, seed=0)


@pytest.mark.parametrize("seed", [-1, 1.5])
def test_a_bad_seed_is_refused(seed):
    with pytest.raises(ConfigError, match="topology seed must be an integer >= 0"):
        make_topology("random-regular:degree=3", 8, seed=seed)
