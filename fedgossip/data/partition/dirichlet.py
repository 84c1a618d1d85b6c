"""Label skew: each class spread over the nodes by Dirichlet(α) proportions.

The scheme of Hsu, Qi & Brown (2019), "Measuring the Effects of Non-Identical Data
Distribution for Federated Visual Classification", used by most non-IID benchmarks,
built here to finish in bounded time for every α > 0 and never to produce NaN:

- proportions are drawn in log space, so a tiny α cannot underflow to 0/0;
- ``min_size`` is reached by moving surplus samples between nodes, not by redrawing
  until every node happens to be large enough, which at small α loops forever
  (FedLab issue #232, flwr-datasets issue #4377).
"""

from __future__ import annotations

import numpy as np

from fedgossip.data.partition.base import Partitioner, Samples
from fedgossip.data.partition.checks import (
    check_params,
    class_sizes,
    min_size_problems,
    node_problems,
    refuse,
)
from fedgossip.data.partition.counts import apportion, indices_from_counts
from fedgossip.specs import Param

__all__ = ["Dirichlet", "log_dirichlet", "dirichlet"]


def log_dirichlet(alpha: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``size`` vectors from Dirichlet(``alpha``) and return their logarithms, ``[size, len(alpha)]``.

    Gamma(α) = Gamma(α+1)·U^(1/α) with U ~ Uniform(0, 1] (Marsaglia & Tsang 2000,
    "A simple method for generating gamma variables"), so
    log G = log Gamma(α+1) + log(U)/α stays finite where Gamma(α) itself underflows
    to 0 (at α = 0.001 half of all draws are exactly 0, and a row of zeros
    normalises to 0/0). Normalising with log-sum-exp then gives proper
    log-proportions for any α > 0.
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    shape = (size, alpha.size)
    uniform = 1.0 - rng.random(shape)  # in (0, 1], so its log is finite
    log_gamma = np.log(rng.standard_gamma(alpha + 1.0, size=shape)) + np.log(uniform) / alpha
    top = log_gamma.max(axis=1, keepdims=True)
    return log_gamma - top - np.log(np.exp(log_gamma - top).sum(axis=1, keepdims=True))


def dirichlet(alpha: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``size`` vectors from Dirichlet(``alpha``); rows sum to 1 and never contain NaN."""
    return np.exp(log_dirichlet(alpha, size, rng))


class Dirichlet(Partitioner):
    """Spread each class over the nodes by Dirichlet(α) proportions (label skew).

    Small ``alpha`` (0.1) gives each node few classes, large ``alpha`` (100) nearly
    IID nodes. Every node gets at least ``max(min_size, 1)`` samples: a partition
    never has an empty node. With ``balance=true`` every node gets the same number
    of samples (±1) and α shapes only each node's label mix.
    """

    params = (
        Param("alpha", float, 0.5, "concentration; small values give few classes per node", gt=0),
        Param("min_size", int, 10, "fewest samples any node may get", ge=0),
        Param("balance", bool, False, "give every node the same number of samples (±1)"),
    )

    def __init__(self, alpha: float = 0.5, min_size: int = 10, balance: bool = False):
        check_params(type(self), alpha=alpha, min_size=min_size, balance=balance)
        self.alpha = float(alpha)
        self.min_size = int(min_size)
        self.balance = bool(balance)

    def split(self, samples: Samples, num_nodes: int, rng: np.random.Generator) -> list[np.ndarray]:
        """Return one sorted int64 index array per node."""
        per_class = class_sizes(samples.y, samples.num_classes)
        n = len(samples)
        problems = node_problems("dirichlet", n, num_nodes)
        problems += min_size_problems("dirichlet", self.min_size, n, num_nodes)
        refuse(problems)

        if self.balance:
            counts = self._balanced_counts(per_class, num_nodes, rng)
        else:
            counts = self._skewed_counts(per_class, num_nodes, rng)
        return indices_from_counts(samples.y, counts, rng)

    def _skewed_counts(self, per_class: np.ndarray, num_nodes: int, rng: np.random.Generator) -> np.ndarray:
        """Return ``counts[node, class]``: class c split by p_c ~ Dir(α·1_N), then lifted to min_size."""
        log_share = log_dirichlet(np.full(num_nodes, self.alpha), len(per_class), rng)  # [class, node]
        counts = apportion(per_class, np.exp(log_share)).T
        # log shares, not shares: at tiny α most shares are exactly 0 after exp,
        # but their logs still rank which classes a node was closest to getting
        _lift_to_floor(counts, log_share.T, max(self.min_size, 1))
        return counts

    def _balanced_counts(self, per_class: np.ndarray, num_nodes: int, rng: np.random.Generator) -> np.ndarray:
        """Return ``counts[node, class]`` with node sizes n/N (±1) and mixes q_i ~ Dir(α·1_K)."""
        n = int(per_class.sum())
        sizes = np.full(num_nodes, n // num_nodes, dtype=np.int64)
        sizes[rng.permutation(num_nodes)[: n % num_nodes]] += 1
        present = per_class > 0  # an absent class would only waste a node's share
        mixes = np.zeros((num_nodes, len(per_class)))
        mixes[:, present] = dirichlet(np.full(int(present.sum()), self.alpha), num_nodes, rng)

        supply = per_class.copy()
        counts = np.zeros((num_nodes, len(per_class)), dtype=np.int64)
        # random order, so no node is systematically the one left with what others did not want;
        # the last node's shortfall fill takes exactly what remains, since sizes sum to n
        for node in rng.permutation(num_nodes):
            take = np.minimum(apportion(sizes[node], mixes[node]), supply)
            short = sizes[node] - take.sum()
            if short:
                take += _fill(short, supply - take)
            counts[node] = take
            supply -= take
        return counts


def _fill(short: int, spare: np.ndarray) -> np.ndarray:
    """Take ``short`` samples from ``spare`` in proportion to it; needs ``spare.sum() >= short``."""
    take = np.minimum(apportion(short, spare), spare)  # the cap only bites on rounding at the edge
    left = short - take.sum()
    if left:
        room = spare - take
        take += np.clip(left - (np.cumsum(room) - room), 0, room)  # greedy, in class order
    return take


def _lift_to_floor(counts: np.ndarray, preference: np.ndarray, floor: int) -> None:
    """Move samples into every node holding fewer than ``floor``, in place, without redrawing.

    A node short of ``floor`` takes from donors' surplus above ``floor``, class by class
    in the order of its own ``preference`` (so its skew is kept), each time from the
    donor with the most of that class to spare. Donors never drop below ``floor`` and
    recipients stop at it, so this ends: total surplus minus total deficit is
    ``n - floor·N >= 0``, which :meth:`Dirichlet.split` checked before any work.
    """
    sizes = counts.sum(axis=1)
    surplus = np.maximum(sizes - floor, 0)
    for node in np.flatnonzero(sizes < floor):
        need = floor - sizes[node]
        for cls in np.argsort(-preference[node], kind="stable"):
            # each pass meets the need or empties one donor of this class: at most N passes
            while need:
                spare = np.minimum(counts[:, cls], surplus)
                donor = int(np.argmax(spare))
                give = min(int(spare[donor]), need)
                if give == 0:
                    break
                counts[donor, cls] -= give
                surplus[donor] -= give
                counts[node, cls] += give
                need -= give
            if not need:
                break
        if need:
            raise RuntimeError("partitioner bug: min_size repair ran out of surplus")
