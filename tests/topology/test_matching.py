"""Random matchings: valid, maximal, and the same on every rank that shares the seed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedgossip.topology import Topology, make_topology, partner_of, random_matching, round_matching


@st.composite
def graphs(draw) -> Topology:
    """Any simple graph on 1..30 nodes, connected or not, dense or sparse."""
    n = draw(st.integers(1, 30))
    density = draw(st.sampled_from([0.0, 0.05, 0.2, 0.6, 1.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < density]
    return Topology.from_edges(n, pairs)


@given(topology=graphs(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=120, deadline=None)
def test_random_matching_is_a_valid_maximal_matching(topology, seed):
    pairs = random_matching(topology, np.random.default_rng(seed))
    edges = set(topology.edges)
    assert all(pair in edges for pair in pairs)  # only neighbours are paired, as (i, j) with i < j
    matched = [node for pair in pairs for node in pair]
    assert len(matched) == len(set(matched))  # nobody is in two pairs
    assert all(i in matched or j in matched for i, j in topology.edges)  # maximal
    assert pairs == sorted(pairs)


@pytest.mark.parametrize("n", [2, 6, 9])
def test_complete_graph_matching_leaves_at_most_one_node_out(n):
    pairs = random_matching(make_topology("complete", n, seed=0), np.random.default_rng(1))
    assert len(pairs) == n // 2


def test_ranks_with_the_same_seed_and_round_agree():
    topology = make_topology("random-regular:degree=4", 32, seed=0)
    # what each of 32 ranks would draw on its own, round 7
    drawn = {tuple(round_matching(topology, seed=11, round_index=7)) for _rank in range(32)}
    assert len(drawn) == 1


def test_rounds_draw_different_matchings_and_every_edge_gets_its_turn():
    ring = make_topology("ring", 10, seed=0)
    rounds = [round_matching(ring, seed=3, round_index=r) for r in range(200)]
    assert len({tuple(m) for m in rounds}) > 1
    assert {pair for m in rounds for pair in m} == set(ring.edges)


def test_partner_of_maps_both_ways_and_marks_the_unmatched():
    partner = partner_of([(0, 3), (1, 2)], 5)
    assert partner.tolist() == [3, 2, 1, 0, -1]
    assert partner.dtype == np.int64


@pytest.mark.parametrize(
    ("pairs", "message"),
    [([(0, 1), (1, 2)], "node 1 is paired twice"), ([(2, 2)], "with itself"), ([(0, 5)], "outside range")],
)
def test_partner_of_refuses_what_is_not_a_matching(pairs, message):
    with pytest.raises(ValueError, match=message):
        partner_of(pairs, 4)
