"""Data-dependent dispatching: similar points go to the same nodes.

After Dick, Li, Pillutla, White, Balcan & Smola (2017), "Data driven resource
allocation for distributed learning": k-means (k-means++ seeding) on a sample of the
points, then every point is sent to the ``P`` nodes whose centres are nearest, subject
to every node holding between ``L`` and ``U`` times the even share ``P·n/N``. Each
node then sees a small region of the input space, where a simple rule fits, instead
of a copy of the whole distribution.

The k-means fit may use a subsample (``sample=M``); routing the points needs only the
centres, so the rule scales past what k-means can fit in memory and is saved beside
the partition (:class:`~fedgossip.data.partition.dispatch_rule.DispatchRule`) to route
the test set or new points the same way.
"""

from __future__ import annotations

import heapq
import math
import warnings
from fractions import Fraction
from typing import Any

import numpy as np

from fedgossip.data.partition.base import Partitioner, Samples
from fedgossip.data.partition.checks import check_params, node_problems, refuse
from fedgossip.data.partition.counts import cut
from fedgossip.data.partition.dispatch_assign import assign
from fedgossip.data.partition.dispatch_rule import DispatchRule, flatten, project
from fedgossip.errors import ConfigError, DataError
from fedgossip.specs import Param

__all__ = ["Dispatch", "balance_bounds", "feature_space"]

_MINIBATCH_ABOVE = 20_000  # fit points beyond which full-batch k-means gets slow
_N_INIT = 3  # k-means++ restarts; the best of three is stable enough for dispatching


def balance_bounds(text: str) -> tuple[float, float]:
    """Read ``L,U`` with ``0 <= L <= 1 <= U`` (``U`` may be ``inf``).

    The bounds must bracket 1, the even share itself: then ``N·L·Pn/N <= Pn <= N·U·Pn/N``
    and some split meets them, so no request that passes here is infeasible.
    """
    pieces = text.split(",")
    try:
        lower, upper = (float(piece) for piece in pieces)
    except ValueError:
        raise ValueError("expected two numbers L,U, e.g. 0.5,2") from None
    if not 0 <= lower <= 1 <= upper:  # also refuses nan
        raise ValueError(
            f"needs 0 <= L <= 1 <= U (node sizes as multiples of the even share), got {lower:g},{upper:g}; "
            "no split can keep every node above an L > 1 or below a U < 1"
        )
    return lower, upper


def feature_space(text: str) -> str:
    """Read ``raw``, ``pca:D`` or ``random-projection:D`` (D >= 1) as the canonical text."""
    kind, _, dims = text.strip().partition(":")
    if kind == "raw" and not dims:
        return kind
    if kind in ("pca", "random-projection") and dims.isascii() and dims.isdigit() and int(dims) >= 1:
        return f"{kind}:{int(dims)}"
    raise ValueError("expected raw, pca:D or random-projection:D with D >= 1, e.g. pca:16")


class Dispatch(Partitioner):
    """Send each point to the nodes with the nearest k-means centres, within size bounds.

    ``clusters=0`` gives one cluster per node; more clusters are grouped into nodes
    of near-equal total size. Each point is stored on ``replication`` distinct
    nodes, the nearest the size bounds allow. Every node holds between
    ``ceil(L·P·n/N)`` (at least 1) and ``floor(U·P·n/N)`` points for ``balance=L,U``;
    the default 0.5,2 lets a dense region fill a node to twice the even share
    before spilling into the next, and keeps any node from starving below half.
    """

    params = (
        Param("clusters", int, 0, "k-means clusters; 0 for one per node, else at least the nodes", ge=0),
        Param("replication", int, 1, "nodes holding each point", ge=1),
        # the default as text, the way a spec writes it (the listing shows it as such)
        Param("balance", balance_bounds, "0.5,2.0", "node sizes L,U as multiples of the even share"),
        Param("features", feature_space, "raw", "space of k-means: raw, pca:D or random-projection:D"),
        Param("sample", int, 0, "points k-means is fitted on; 0 for all", ge=0),
    )

    def __init__(
        self,
        clusters: int = 0,
        replication: int = 1,
        balance: tuple[float, float] | str = "0.5,2.0",
        features: str = "raw",
        sample: int = 0,
    ):
        balance_text = balance if isinstance(balance, str) else ",".join(repr(float(b)) for b in balance)
        check_params(
            type(self),
            clusters=clusters,
            replication=replication,
            balance=balance_text,
            features=features,
            sample=sample,
        )
        self.clusters = int(clusters)
        self.replication = int(replication)
        self.balance = balance_bounds(balance_text)
        self.features = feature_space(features)
        self.sample = int(sample)
        self.rule: DispatchRule | None = None  # set by split: routes new points like the training ones
        self.records: dict[str, Any] = {}  # set by split: what the manifest records about the dispatch

    def split(self, samples: Samples, num_nodes: int, rng: np.random.Generator) -> list[np.ndarray]:
        """Return one sorted int64 index array per node; each point is on ``replication`` of them."""
        if samples.x is None:
            raise ConfigError(
                "dispatch routes points by their features, but none were given; "
                "pass Samples with x, or use a scheme that needs labels only (iid, dirichlet, shards)"
            )
        x = flatten(samples.x)
        n = len(x)
        if n != len(samples):
            raise DataError(f"dispatch was given {n} feature rows for {len(samples)} labels; they must match")
        refuse(node_problems("dispatch", n, num_nodes) or self._problems(n, x.shape[1], num_nodes))
        lower, upper = self._sizes(n, num_nodes)
        fit = np.sort(rng.choice(n, self._fit_size(n), replace=False)) if self.sample else np.arange(n)
        nearest, distances = self._fit_rule(x, fit, num_nodes, rng)
        slots = assign(distances, self.replication, lower, upper)
        node_major = np.argsort(slots.ravel(), kind="stable")
        loads = np.bincount(slots.ravel(), minlength=num_nodes)
        parts = cut(node_major // self.replication, loads)
        self.records = self._records(samples, nearest, parts, len(fit))
        return parts

    def _fit_rule(
        self, x: np.ndarray, fit: np.ndarray, num_nodes: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fit the features and k-means on ``x[fit]`` and set :attr:`rule`.

        Returns every point's nearest centre and its squared distances to the nodes.
        """
        clusters = self.clusters or num_nodes
        transform_seed, kmeans_seed = (int(s) for s in rng.integers(2**31 - 1, size=2))
        fit_x = x[fit] if self.sample else x  # x[fit] would copy all of x
        offset, projection = _fit_features(self.features, fit_x, transform_seed)
        centres = _fit_centres(project(fit_x, offset, projection), clusters, kmeans_seed)
        # one node per cluster first: routing by this rule finds every point's nearest centre
        self.rule = DispatchRule(centres, np.arange(clusters), clusters, offset, projection)
        if clusters == num_nodes:
            distances = self.rule.node_distances(x)
            return np.argmin(distances, axis=1), distances
        nearest = self.rule.route(x)[:, 0]
        owner = _deal_clusters(np.bincount(nearest, minlength=clusters), num_nodes)
        self.rule = DispatchRule(centres, owner, num_nodes, offset, projection)
        return nearest, self.rule.node_distances(x)

    def _problems(self, n: int, dims: int, num_nodes: int) -> list[str]:
        """Check what depends on the data, before any work; the node count is already valid."""
        problems = []
        if self.replication > num_nodes:
            problems.append(
                f"dispatch replication={self.replication} puts each point on that many distinct nodes, "
                f"but there are {num_nodes}; lower replication or use more nodes (--nodes)"
            )
        clusters, fit = self.clusters or num_nodes, self._fit_size(n)
        if clusters < num_nodes:
            problems.append(
                f"dispatch clusters={clusters} leaves nodes without a cluster: it must be at least the "
                f"{num_nodes} nodes; raise clusters, or set clusters=0 for one cluster per node"
            )
        if clusters > fit:
            what = f"sample={self.sample}" if fit < n else "the data"
            problems.append(
                f"dispatch clusters={clusters} needs as many points to fit k-means on, but {what} gives "
                f"{fit}; lower clusters or use fewer nodes" + (", or raise sample" if fit < n else "")
            )
        kind, _, reduced = self.features.partition(":")
        most = min(fit, dims)
        if kind == "pca" and int(reduced) > most:
            problems.append(
                f"dispatch features={self.features} keeps more components than the {most} that "
                f"{fit} points of {dims} features have; use pca:{most} or fewer"
            )
        return problems

    def _fit_size(self, n: int) -> int:
        return min(self.sample, n) if self.sample else n

    def _sizes(self, n: int, num_nodes: int) -> tuple[int, int]:
        """Return the fewest and most points a node may hold.

        Sizes are rounded inwards, ``ceil(L·P·n/N)`` and ``floor(U·P·n/N)``, so every node
        really holds between L and U times its share; only where that leaves too little room
        for all ``P·n`` copies (L or U near 1) is a bound rounded outwards. Either way
        ``fewest ≤ P·n/N ≤ most``, which is what makes the assignment feasible. Bounds are
        read as decimals (``Fraction("0.8")``), so ``L·P·n/N`` lands exactly on an integer
        when it should, not one off from binary rounding.
        """
        copies = self.replication * n
        share = Fraction(copies, num_nodes)
        lower, upper = (Fraction(repr(bound)) if not math.isinf(bound) else None for bound in self.balance)
        fewest = math.ceil(lower * share)
        if fewest * num_nodes > copies:
            fewest = math.floor(lower * share)
        most = n
        if upper is not None:
            most = math.floor(upper * share)
            if most * num_nodes < copies:
                most = math.ceil(upper * share)
        return max(1, fewest), min(n, most)  # never an empty node; a node holds a point at most once

    def _records(self, samples: Samples, nearest: np.ndarray, parts: list[np.ndarray], fit: int) -> dict:
        """Return plain JSON data: size bounds asked and met, and how pure clusters and nodes are."""
        n, num_nodes = len(nearest), len(parts)
        share = self.replication * n / num_nodes
        y = np.asarray(samples.y, dtype=np.int64)
        joint = np.zeros((self.rule.centres.shape[0], samples.num_classes), dtype=np.int64)
        np.add.at(joint, (nearest, y), 1)
        node_purity = [np.bincount(y[p], minlength=samples.num_classes).max() / len(p) for p in parts]
        sizes = np.array([len(p) for p in parts])
        lower, upper = self.balance
        return {
            "clusters": int(self.rule.centres.shape[0]),
            "features": self.features,
            "fit_points": int(fit),
            "replication": self.replication,
            "balance_asked": [lower, None if math.isinf(upper) else upper],
            "balance_achieved": [float(sizes.min() / share), float(sizes.max() / share)],
            "cluster_purity": float(joint.max(axis=1).sum() / n),
            "node_purity_mean": float(np.mean(node_purity)),
            "node_purity_min": float(np.min(node_purity)),
        }


def _fit_features(features: str, x: np.ndarray, seed: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Fit the feature map on ``x``; return ``(offset, projection)``, both ``None`` for raw features."""
    kind, _, dims = features.partition(":")
    if kind == "raw":
        return None, None
    # scikit-learn is imported where it fits (~1 s and ~75 MB): not by every rank that loads this module.
    from sklearn.decomposition import PCA
    from sklearn.random_projection import GaussianRandomProjection

    if kind == "pca":
        pca = PCA(n_components=int(dims), random_state=seed).fit(x)
        return pca.mean_.astype(np.float64), pca.components_.T.astype(np.float64)
    projection = GaussianRandomProjection(n_components=int(dims), random_state=seed).fit(x)
    return np.zeros(x.shape[1]), np.asarray(projection.components_, dtype=np.float64).T


def _fit_centres(z: np.ndarray, clusters: int, seed: int) -> np.ndarray:
    """Return ``clusters`` k-means centres of ``z`` (k-means++ seeding, best of a few restarts)."""
    # scikit-learn is imported where it fits (~1 s and ~75 MB): not by every rank that loads this module.
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.exceptions import ConvergenceWarning

    kind = MiniBatchKMeans if len(z) > _MINIBATCH_ABOVE else KMeans
    model = kind(n_clusters=clusters, init="k-means++", n_init=_N_INIT, random_state=seed)
    with warnings.catch_warnings():
        # data with fewer distinct points than clusters gives repeated centres; routing copes
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(z)
    return np.asarray(model.cluster_centers_, dtype=np.float64)


def _deal_clusters(sizes: np.ndarray, num_nodes: int) -> np.ndarray:
    """Return the node of each cluster: largest first, to the node holding the fewest points.

    The LPT rule of Graham (1969), as the natural scheme deals groups. Among equally
    loaded nodes the one with fewer clusters goes first, so even empty clusters
    reach every node and each node owns at least one centre.
    """
    owner = np.empty(len(sizes), dtype=np.int64)
    heap = [(0, 0, node) for node in range(num_nodes)]  # (points, clusters, node): sorted, a heap
    for cluster in np.argsort(-sizes, kind="stable"):
        points, count, node = heapq.heappop(heap)
        owner[cluster] = node
        heapq.heappush(heap, (points + int(sizes[cluster]), count + 1, node))
    return owner
