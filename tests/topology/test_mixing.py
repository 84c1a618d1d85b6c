"""Metropolis weights and the spectral gap: the matrix's properties, closed forms, and consensus rate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedgossip.topology import Topology, make_topology, metropolis_row, metropolis_weights, spectral_gap

GRAPHS = [
    ("ring", 2),
    ("ring", 9),
    ("torus", 12),
    ("complete", 7),
    ("hypercube", 16),
    ("exponential", 13),
    ("star", 8),
    ("random-regular:degree=3", 20),
    ("erdos-renyi:p=0.3", 25),
]


@pytest.mark.parametrize(("spec", "n"), GRAPHS)
def test_metropolis_matrix_is_symmetric_nonnegative_and_doubly_stochastic(spec, n):
    topology = make_topology(spec, n, seed=1)
    w = metropolis_weights(topology)
    assert w.shape == (n, n) and w.dtype == np.float64
    assert np.array_equal(w, w.T)
    assert (w >= 0).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    off_diagonal = (w > 0) & ~np.eye(n, dtype=bool)
    assert {(i, j) for i, j in zip(*np.nonzero(off_diagonal), strict=True) if i < j} == set(topology.edges)


@pytest.mark.parametrize(("spec", "n"), GRAPHS)
def test_a_ranks_row_matches_the_dense_matrix(spec, n):
    topology = make_topology(spec, n, seed=1)
    w = metropolis_weights(topology)
    for i in range(n):
        row = metropolis_row(topology, i)
        assert sorted(row) == sorted({i, *topology.neighbors(i)})
        np.testing.assert_allclose([row[j] for j in sorted(row)], w[i, sorted(row)], rtol=0, atol=1e-15)


def test_weights_follow_the_larger_degree():
    star = make_topology("star", 5, seed=0)  # hub degree 4, leaves degree 1
    w = metropolis_weights(star)
    assert w[0, 1] == pytest.approx(1 / 5) and w[0, 0] == pytest.approx(1 / 5)
    assert w[1, 1] == pytest.approx(4 / 5) and w[1, 2] == 0


@pytest.mark.parametrize("n", [2, 3, 5, 10, 33])
def test_complete_graph_averages_in_one_round(n):
    """d = n−1, so W_ij = 1/n off and 1 − (n−1)/n = 1/n on the diagonal: W = J/n, eigenvalues 1, 0, ..., 0."""
    w = metropolis_weights(make_topology("complete", n, seed=0))
    np.testing.assert_allclose(w, np.full((n, n), 1 / n), atol=1e-15)
    assert spectral_gap(w) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("n", [3, 4, 5, 8, 16, 51])
def test_ring_gap_matches_the_circulant_closed_form(n):
    """W = I/3 + (S + Sᵀ)/3 for the shift S, so λ_k = 1/3 + 2/3·cos(2πk/n).

    The largest |λ| after λ_0 = 1 is k = 1: the most negative one, 1/3 − 2/3 = −1/3
    at worst, is never larger in modulus than 1/3 + 2/3·cos(2π/n) for n >= 3.
    """
    gap = spectral_gap(metropolis_weights(make_topology("ring", n, seed=0)))
    assert gap == pytest.approx(1 - (1 / 3 + 2 / 3 * math.cos(2 * math.pi / n)), abs=1e-12)


@pytest.mark.parametrize("n", [2, 4, 8, 32])
def test_hypercube_gap_is_two_over_dimension_plus_one(n):
    """W = (I + A)/(k+1) with A's eigenvalues k − 2j, so the second-largest |λ| is (k−1)/(k+1)."""
    k = int(math.log2(n))
    gap = spectral_gap(metropolis_weights(make_topology("hypercube", n, seed=0)))
    assert gap == pytest.approx(2 / (k + 1), abs=1e-12)


@pytest.mark.parametrize("n", [3, 6, 20])
def test_star_gap_is_one_over_n(n):
    """Leaf differences x_a − x_b are untouched by the hub and shrink only by W_aa = (n−1)/n."""
    gap = spectral_gap(metropolis_weights(make_topology("star", n, seed=0)))
    assert gap == pytest.approx(1 / n, abs=1e-12)


@pytest.mark.parametrize(("spec", "n"), [*GRAPHS, ("ring", 40), ("star", 30)])
def test_gossip_contracts_at_least_as_fast_as_the_gap_promises(spec, n):
    w = metropolis_weights(make_topology(spec, n, seed=2))
    rate = (1 - spectral_gap(w)) ** 2
    x = np.random.default_rng(3).normal(size=(n, 5))
    mean = x.mean(axis=0)
    start = np.sum((x - mean) ** 2)
    for t in range(1, 60):
        x = w @ x
        np.testing.assert_allclose(x.mean(axis=0), mean, atol=1e-12)  # doubly stochastic keeps x̄
        assert np.sum((x - mean) ** 2) <= rate**t * start * (1 + 1e-9) + 1e-20


def test_the_bound_is_reached_along_the_slowest_eigenvector():
    w = metropolis_weights(make_topology("ring", 12, seed=0))
    values, vectors = np.linalg.eigh(w)
    slowest = vectors[:, np.argsort(np.abs(values))[-2]]  # largest |λ| but the λ = 1 one
    after = np.linalg.matrix_power(w, 10) @ slowest
    assert np.sum(after**2) == pytest.approx((1 - spectral_gap(w)) ** 20)


def test_single_node_and_disconnected_gaps():
    assert spectral_gap(metropolis_weights(Topology(1, ()))) == 1.0
    split = Topology.from_edges(4, [(0, 1), (2, 3)])
    assert spectral_gap(metropolis_weights(split)) == pytest.approx(0.0, abs=1e-12)


def test_spectral_gap_refuses_an_asymmetric_matrix():
    with pytest.raises(ValueError, match="symmetric"):
        spectral_gap(np.array([[0.5, 0.5], [0.2, 0.8]]))


@pytest.mark.parametrize(
    ("spec", "n"), [("ring", 40), ("torus", 64), ("exponential", 50), ("random-regular:degree=3", 60)]
)
def test_big_graphs_take_the_sparse_path_to_the_same_gap(monkeypatch, spec, n):
    from fedgossip.topology import mixing

    topology = make_topology(spec, n, seed=2)
    exact = spectral_gap(metropolis_weights(topology))
    monkeypatch.setattr(mixing, "DENSE_MAX_NODES", 8)  # these count as big: Lanczos, not eigvalsh
    assert mixing.topology_spectral_gap(topology) == pytest.approx(exact, rel=1e-6, abs=1e-12)


def test_a_ring_of_five_thousand_has_its_closed_form_gap_without_a_dense_matrix():
    from fedgossip.topology.mixing import DENSE_MAX_NODES, topology_spectral_gap

    n = 5000
    assert n > DENSE_MAX_NODES
    # W = (I + S + Sᵀ)/3 on a ring: eigenvalues 1/3 + 2/3·cos(2πk/n), the largest but one at k = 1
    expected = 2 / 3 * (1 - math.cos(2 * math.pi / n))
    assert topology_spectral_gap(make_topology("ring", n, seed=0)) == pytest.approx(expected, rel=1e-3)


def test_a_big_disconnected_graph_never_mixes(monkeypatch):
    from fedgossip.topology import mixing

    halves = Topology(20, [(i, i + 1) for i in range(9)] + [(i, i + 1) for i in range(10, 19)], "two paths")
    monkeypatch.setattr(mixing, "DENSE_MAX_NODES", 8)
    assert mixing.topology_spectral_gap(halves) == 0.0
