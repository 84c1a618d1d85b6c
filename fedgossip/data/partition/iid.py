"""IID: every node gets a uniformly random, near-equal share of the samples."""

from __future__ import annotations

import numpy as np

from fedgossip.data.partition.base import Partitioner, Samples
from fedgossip.data.partition.checks import node_problems, refuse
from fedgossip.data.partition.counts import cut

__all__ = ["Iid"]


class Iid(Partitioner):
    """Shuffle the samples and cut them into near-equal parts (sizes differ by at most 1).

    The baseline every non-IID scheme is compared against: each node's label mix
    is the global one up to sampling noise.
    """

    params = ()

    def split(self, samples: Samples, num_nodes: int, rng: np.random.Generator) -> list[np.ndarray]:
        """Return one sorted int64 index array per node."""
        refuse(node_problems("iid", len(samples), num_nodes))
        # the first n mod N parts get one more sample, as np.array_split does
        sizes = np.full(num_nodes, len(samples) // num_nodes, dtype=np.int64)
        sizes[: len(samples) % num_nodes] += 1
        return cut(rng.permutation(len(samples)), sizes)
