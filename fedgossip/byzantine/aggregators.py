"""How a node combines its neighbours' vectors (``--robust``), and the registry of aggregators.

An aggregator is a pure function: from a node's own vector x_i, the vectors x_j it
received and their mixing weights W_ij (with W_ii, summing to one) to the node's
new vector. ``mean`` is the plain rule Σ_j W_ij x_j. The others bound what any one
neighbour can do:

- ``clip`` — self-centred clipping (He, Karimireddy & Jaggi 2022, "Byzantine-robust
  decentralized learning via ClippedGossip", eq. 3): x_i + Σ_j W_ij clip(x_j − x_i, τ),
  clip(z, τ) = z · min(1, τ/‖z‖). Given no τ, each call picks its own: the distance of
  the (b+1)-th farthest neighbour, so the b farthest are cut to it (our practical rule
  in the spirit of the paper's adaptive τ, which needs the honest neighbours' spread).
- ``trimmed-mean`` — per coordinate, drop the b largest and b smallest of own + received,
  average the rest (Yin et al. 2018).
- ``median`` — the coordinate-wise median of own + received.
- ``krum`` / ``multi-krum`` (Blanchard et al. 2017), for fedavg's server: score each
  update by the squared distances to its n − f − 2 nearest others; take the best one
  (krum) or average the m best (multi-krum).

The server (fedavg) has no vector of its own in the combination: it passes
``self_weight`` 0, and the coordinate-wise rules then act on the received updates only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from fedgossip.registry import Plugin, Registry, check_params
from fedgossip.specs import Param

__all__ = ["Aggregator", "AGGREGATORS", "clip_to"]


class Aggregator(Plugin, ABC):
    """Combine a node's own vector with the ones it received into its new vector."""

    # Where it can stand: "gossip" (a node over its neighbourhood), "pair" (swarm: one partner),
    # "server" (fedavg over the chosen clients' updates).
    places: ClassVar[frozenset[str]] = frozenset({"gossip", "pair", "server"})

    @abstractmethod
    def combine(
        self, own: torch.Tensor, received: list[torch.Tensor], weights: list[float], self_weight: float
    ) -> torch.Tensor:
        """Return the new vector from ``own`` and ``received`` (weights W_ij; with W_ii they sum to 1)."""

    def tolerance_problem(self, vectors: int) -> str | None:
        """Say why it cannot combine ``vectors`` vectors (own included where it counts), or ``None``."""
        return None

    @property
    def is_mean(self) -> bool:
        """Whether it is the plain weighted average (so the exact, faster paths may be taken)."""
        return False


class Mean(Aggregator):
    """The plain weighted average Σ_j W_ij x_j (Metropolis, pairwise or sample-weighted): no defence."""

    name = "mean"

    def combine(self, own, received, weights, self_weight):
        mixed = own * self_weight
        for vector, weight in zip(received, weights, strict=True):
            mixed.add_(vector, alpha=weight)
        return mixed

    @property
    def is_mean(self) -> bool:
        return True


def clip_to(vector: torch.Tensor, tau: float) -> torch.Tensor:
    """Return ``vector`` scaled down to norm ``tau`` if it is longer: z · min(1, τ/‖z‖)."""
    norm = float(torch.linalg.vector_norm(vector))
    return vector if norm <= tau else vector * (tau / norm)


class Clip(Aggregator):
    """Self-centred clipping (ClippedGossip): x_i + Σ_j W_ij clip(x_j − x_i, τ)."""

    name = "clip"
    params = (
        Param("tau", float, None, "clipping radius τ; unset: each node's own, from b", ge=0),
        Param("b", int, 1, "with no tau: how many of a node's neighbours to assume faulty", ge=0),
    )

    def __init__(self, tau: float | None = None, b: int = 1):
        check_params(type(self), b=b, **({} if tau is None else {"tau": tau}))
        self.tau = tau
        self.b = b

    def combine(self, own, received, weights, self_weight):
        differences = [vector - own for vector in received]
        tau = self.tau if self.tau is not None else self.adaptive_tau(differences)
        mixed = own.clone()
        for difference, weight in zip(differences, weights, strict=True):
            mixed.add_(clip_to(difference, tau), alpha=weight)
        return mixed

    def adaptive_tau(self, differences: list[torch.Tensor]) -> float:
        """Return the (b+1)-th largest ‖x_j − x_i‖, to which the b farthest are cut (0: none left)."""
        distances = sorted((float(torch.linalg.vector_norm(d)) for d in differences), reverse=True)
        return distances[self.b] if self.b < len(distances) else 0.0

    def tolerance_problem(self, vectors):
        if self.tau is None and self.b >= vectors - 1:
            return (
                f"clip with no tau cuts the b={self.b} farthest of a node's {vectors - 1} neighbour(s) "
                "to the next one's distance, and none is left; lower b or give clip:tau=T"
            )
        return None


class _CoordinateWise(Aggregator):
    """Act per coordinate on the stacked vectors (own first when it takes part, ``self_weight`` > 0)."""

    places = frozenset({"gossip", "server"})  # one partner (swarm) leaves nothing to sort

    def combine(self, own, received, weights, self_weight):
        stacked = torch.stack(([own] if self_weight > 0 else []) + list(received))
        return self.reduce(stacked)

    @abstractmethod
    def reduce(self, stacked: torch.Tensor) -> torch.Tensor:
        """Return one vector from the rows of ``stacked``."""


class TrimmedMean(_CoordinateWise):
    """Per coordinate, drop the b largest and b smallest values and average the rest."""

    name = "trimmed-mean"
    params = (Param("b", int, 1, "values dropped at each end, per coordinate", ge=0),)

    def __init__(self, b: int = 1):
        check_params(type(self), b=b)
        self.b = b

    def reduce(self, stacked):
        ordered, _ = torch.sort(stacked, dim=0)
        return ordered[self.b : stacked.shape[0] - self.b].mean(dim=0)

    def tolerance_problem(self, vectors):
        if 2 * self.b >= vectors:
            return (
                f"trimmed-mean:b={self.b} drops {2 * self.b} of {vectors} values per coordinate "
                f"(own included) and keeps none; lower b to {(vectors - 1) // 2} or use a denser --topology"
            )
        return None


class Median(_CoordinateWise):
    """The coordinate-wise median (for an even count, the mean of the two middle values)."""

    name = "median"

    def reduce(self, stacked):
        ordered, _ = torch.sort(stacked, dim=0)
        middle = stacked.shape[0] // 2
        if stacked.shape[0] % 2:
            return ordered[middle].clone()
        return (ordered[middle - 1] + ordered[middle]) / 2


class Krum(Aggregator):
    """Krum (Blanchard et al. 2017): the update closest to its n − f − 2 nearest others (fedavg's server)."""

    name = "krum"
    places = frozenset({"server"})
    params = (Param("f", int, 1, "faulty clients to tolerate", ge=0),)

    def __init__(self, f: int = 1):
        check_params(type(self), f=f)
        self.f = f

    def combine(self, own, received, weights, self_weight):
        return torch.stack([received[i] for i in self.chosen(received, 1)]).mean(dim=0)

    def chosen(self, received: list[torch.Tensor], count: int) -> list[int]:
        """Return the indices of the ``count`` updates with the lowest Krum scores (ties: the lower index)."""
        stacked = torch.stack(received)
        distances = torch.cdist(stacked[None].double(), stacked[None].double())[0] ** 2
        nearest = max(1, len(received) - self.f - 2)
        scores = [float(torch.sort(row)[0][1 : nearest + 1].sum()) for row in distances]  # [0] is itself
        return sorted(range(len(received)), key=lambda i: (scores[i], i))[:count]

    def tolerance_problem(self, vectors):
        if vectors <= 2 * self.f + 2:
            return (
                f"{self.name} with f={self.f} needs more than {2 * self.f + 2} client updates per round, "
                f"got {vectors}; lower f or sample more clients (--client-fraction)"
            )
        return None


class MultiKrum(Krum):
    """Multi-Krum: average the m updates with the lowest Krum scores."""

    name = "multi-krum"
    params = (*Krum.params, Param("m", int, 2, "updates averaged", ge=1))

    def __init__(self, f: int = 1, m: int = 2):
        check_params(type(self), f=f, m=m)
        self.f = f
        self.m = m

    def combine(self, own, received, weights, self_weight):
        return torch.stack([received[i] for i in self.chosen(received, self.m)]).mean(dim=0)

    def tolerance_problem(self, vectors):
        problem = super().tolerance_problem(vectors)
        if problem is None and self.m > vectors:
            problem = f"multi-krum:m={self.m} averages more updates than the {vectors} of a round; lower m"
        return problem


AGGREGATORS: Registry[Aggregator] = Registry("aggregators", Aggregator)
