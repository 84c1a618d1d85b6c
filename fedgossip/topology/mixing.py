"""Metropolis–Hastings mixing weights and the spectral gap that bounds how fast gossip mixes.

One synchronous gossip round is x ← W x (D-PSGD, Lian et al. 2017). For a symmetric,
doubly stochastic W on a connected graph the average x̄ never changes and the
disagreement shrinks geometrically:

    ||x_t − x̄||² ≤ (1 − gap)^(2t) · ||x_0 − x̄||²,

because x_t − x̄ = W^t (x_0 − x̄) lies orthogonal to the all-ones vector, where W
stretches no vector by more than its second-largest eigenvalue modulus 1 − gap.
This is the rate the consensus distance of a run with learning rate 0 must follow.
"""

from __future__ import annotations

import numpy as np

from fedgossip.topology.base import Topology

__all__ = ["metropolis_weights", "metropolis_row", "spectral_gap", "topology_spectral_gap"]

DENSE_MAX_NODES = 2048  # above, a dense n×n eigendecomposition costs minutes and n² memory
_SPARSE_TOLERANCE = 1e-10  # relative, on an eigenvalue near 1 − gap: a ring's gap is ~1/n²
_SPARSE_ITERATIONS = 100_000


def metropolis_weights(topology: Topology) -> np.ndarray:
    """Return the Metropolis–Hastings matrix W, dense float64 ``[n, n]``.

    W_ij = 1 / (1 + max(d_i, d_j)) for each neighbour j of i and W_ii = 1 − Σ_j W_ij
    (Xiao & Boyd 2004, "Fast linear iterations for distributed averaging", eq. 9).
    W is symmetric and doubly stochastic, and every entry is >= 0: each off-diagonal
    weight of row i is at most 1/(1 + d_i), so the d_i of them sum to less than 1.
    """
    n = topology.num_nodes
    weights = np.zeros((n, n), dtype=np.float64)
    if topology.edges:
        i, j = np.asarray(topology.edges, dtype=np.int64).T
        degrees = topology.degrees
        w = 1.0 / (1.0 + np.maximum(degrees[i], degrees[j]))
        weights[i, j] = w
        weights[j, i] = w
    weights[np.diag_indices(n)] = 1.0 - weights.sum(axis=1)
    return weights


def metropolis_row(topology: Topology, i: int) -> dict[int, float]:
    """Return row ``i`` of the Metropolis matrix as ``{node: weight}`` for i and its neighbours.

    What one rank needs for x_i ← Σ_j W_ij x_j, without the dense n×n matrix; equal
    (to rounding) to the nonzero entries of ``metropolis_weights(topology)[i]``.
    """
    d_i = topology.degree(i)
    row = {j: 1.0 / (1.0 + max(d_i, topology.degree(j))) for j in topology.neighbors(i)}
    row[i] = 1.0 - sum(row.values())
    return dict(sorted(row.items()))


def spectral_gap(weights: np.ndarray) -> float:
    """Return 1 − max |λ| over the eigenvalues of a symmetric W except one eigenvalue 1.

    The dropped eigenvalue belongs to the all-ones vector, which W keeps fixed. The
    gap is 0 for a disconnected graph (1 is then a repeated eigenvalue) and 1 when one
    round averages exactly (complete graph); a single node has gap 1.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[0] != weights.shape[1]:
        raise ValueError(f"expected a square matrix, got shape {weights.shape}")
    if not np.allclose(weights, weights.T, rtol=0, atol=1e-12):
        raise ValueError("the mixing matrix must be symmetric; eigvalsh would read only its lower half")
    if len(weights) == 1:
        return 1.0
    eigenvalues = np.linalg.eigvalsh(weights)  # ascending; the last is 1 for a stochastic W
    rest = np.abs(eigenvalues[:-1]).max()
    return float(min(1.0, max(0.0, 1.0 - rest)))  # clip rounding just outside [0, 1]


def topology_spectral_gap(topology: Topology) -> float | None:
    """Return the spectral gap of ``topology``'s Metropolis matrix; ``None`` where it cannot be had.

    Up to :data:`DENSE_MAX_NODES` nodes, exactly (:func:`spectral_gap` of the dense
    matrix); above, by Lanczos iteration (ARPACK's ``eigsh``) on the sparse matrix with
    the all-ones direction projected out, whose largest |λ| is 1 − gap. ``None`` if the
    iteration does not converge: a gap too small to resolve, on a graph that big.
    """
    n = topology.num_nodes
    if n <= DENSE_MAX_NODES:
        return spectral_gap(metropolis_weights(topology))
    from scipy.sparse import coo_matrix, diags
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    if not topology.is_connected():
        return 0.0  # 1 is a repeated eigenvalue: the components never mix
    i, j = np.asarray(topology.edges, dtype=np.int64).T
    degrees = topology.degrees
    w = 1.0 / (1.0 + np.maximum(degrees[i], degrees[j]))
    weights = coo_matrix((np.r_[w, w], (np.r_[i, j], np.r_[j, i])), shape=(n, n)).tocsr()
    weights = weights + diags(1.0 - np.asarray(weights.sum(axis=1)).ravel())
    ones = np.full(n, 1.0 / np.sqrt(n))

    def disagreement(v: np.ndarray) -> np.ndarray:  # W v with v's mean taken out
        v = np.ravel(v)
        return weights @ (v - ones * (ones @ v))

    operator = LinearOperator((n, n), matvec=disagreement, dtype=np.float64)
    try:
        (largest,) = eigsh(
            operator, k=1, which="LM", tol=_SPARSE_TOLERANCE, maxiter=_SPARSE_ITERATIONS,
            return_eigenvectors=False,
        )  # fmt: skip
    except ArpackNoConvergence:
        return None
    return float(min(1.0, max(0.0, 1.0 - abs(largest))))
