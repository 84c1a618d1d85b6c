"""Quantity skew: node sizes drawn from a log-normal, labels IID within each node."""

from __future__ import annotations

import numpy as np

from fedgossip.data.partition.base import Partitioner, Samples
from fedgossip.data.partition.checks import check_params, min_size_problems, node_problems, refuse
from fedgossip.data.partition.counts import apportion, cut
from fedgossip.specs import Param

__all__ = ["Quantity"]


class Quantity(Partitioner):
    """Give nodes log-normally distributed sizes; each node's labels are a random sample.

    Sizes follow the quantity-skew setting of Li et al. (2022), "Federated Learning on
    Non-IID Data Silos: An Experimental Study": node ``i`` gets ``min_size`` samples
    plus a share of the rest proportional to ``w_i ~ LogNormal(0, σ)``. ``sigma=0``
    gives equal sizes (±1); a larger ``sigma`` gives a larger spread of sizes.
    """

    params = (
        Param("sigma", float, 1.0, "spread of the log-normal node sizes; 0 gives equal sizes", ge=0),
        Param("min_size", int, 1, "fewest samples any node may get", ge=1),
    )

    def __init__(self, sigma: float = 1.0, min_size: int = 1):
        check_params(type(self), sigma=sigma, min_size=min_size)
        self.sigma = float(sigma)
        self.min_size = int(min_size)

    def split(self, samples: Samples, num_nodes: int, rng: np.random.Generator) -> list[np.ndarray]:
        """Return one sorted int64 index array per node, each of at least ``min_size`` samples."""
        n = len(samples)
        problems = node_problems("quantity", n, num_nodes)
        problems += min_size_problems("quantity", self.min_size, n, num_nodes)
        refuse(problems)

        # w ∝ exp(σ·z) normalised in log space: no overflow however large σ is
        log_w = self.sigma * rng.standard_normal(num_nodes)
        weights = np.exp(log_w - log_w.max())
        sizes = self.min_size + apportion(n - self.min_size * num_nodes, weights)
        return cut(rng.permutation(n), sizes)
