"""Gossip over the online subgraph: Metropolis weights recomputed for the online nodes."""

from __future__ import annotations

import numpy as np
import pytest

from fedgossip.topology.base import Topology, make_topology
from fedgossip.topology.matching import random_matching
from fedgossip.topology.mixing import metropolis_weights
from fedgossip.topology.online import online_metropolis_row, online_subgraph


@pytest.fixture
def graph() -> Topology:
    return make_topology("erdos-renyi:p=0.4", 12, seed=3)


def test_mixing_preserves_the_online_mean_and_freezes_offline_nodes(graph):
    rng = np.random.default_rng(0)
    online = rng.random(12) < 0.6
    x = rng.standard_normal((12, 5))
    mixed = metropolis_weights(online_subgraph(graph, online)) @ x
    np.testing.assert_allclose(mixed[online].mean(axis=0), x[online].mean(axis=0), atol=1e-12)
    np.testing.assert_array_equal(mixed[~online], x[~online])


def test_online_weights_are_metropolis_on_the_relabelled_online_graph(graph):
    online = np.zeros(12, dtype=bool)
    online[[0, 2, 3, 5, 8, 9, 11]] = True
    ids = np.flatnonzero(online)
    relabel = {int(node): k for k, node in enumerate(ids)}
    small = Topology.from_edges(
        len(ids), [(relabel[i], relabel[j]) for i, j in graph.edges if online[i] and online[j]]
    )
    full = metropolis_weights(online_subgraph(graph, online))
    np.testing.assert_allclose(full[np.ix_(ids, ids)], metropolis_weights(small), atol=1e-15)


def test_matching_on_the_online_subgraph_pairs_online_nodes_only(graph):
    online = np.random.default_rng(1).random(12) < 0.5
    for seed in range(20):
        pairs = random_matching(online_subgraph(graph, online), np.random.default_rng(seed))
        assert all(online[i] and online[j] for i, j in pairs)
        assert all((min(i, j), max(i, j)) in set(graph.edges) for i, j in pairs)


def test_wrong_mask_shape_is_refused(graph):
    with pytest.raises(ValueError, match=r"shape \(12,\)"):
        online_subgraph(graph, np.ones(5, dtype=bool))


def test_per_node_rows_equal_the_online_matrix(graph):
    online = np.random.default_rng(2).random(12) < 0.6
    dense = metropolis_weights(online_subgraph(graph, online))
    for i in range(12):
        row = online_metropolis_row(graph, online, i)
        expected = {j: dense[i, j] for j in np.flatnonzero(dense[i]).tolist()}
        assert row.keys() == expected.keys()
        np.testing.assert_allclose(list(row.values()), list(expected.values()), atol=1e-15)
    assert online_metropolis_row(graph, online, int(np.flatnonzero(~online)[0])) == {
        int(np.flatnonzero(~online)[0]): 1.0
    }
