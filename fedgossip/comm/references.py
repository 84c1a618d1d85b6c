"""What each end of an edge knows of the other's model, so only compressed *deltas* travel.

Compressed gossip never sends a model, only ``Q(x − reference)``, and both the
sender and every receiver add the same decoded delta to the same reference. The
references at the two ends of an edge therefore stay bit-identical (the sender
decodes its own packet, and decoding is deterministic), and whatever the code
dropped this time is still in ``x − reference`` next time: the references are
the error feedback of gossip.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

__all__ = ["PublicCopies", "NeighbourCopies", "EdgeReferences"]


def _check_keys(kind: str, state: dict[str, Any], expected: set[str]) -> None:
    missing, extra = expected - set(state), set(state) - expected
    if missing or extra:
        raise KeyError(f"{kind} state has keys {sorted(state)}, expected {sorted(expected)}")


class PublicCopies:
    """CHOCO-gossip's memory of one node (Koloskova, Stich, Jaggi 2019, Algorithm 2).

    ``own`` is x̂_i, the public copy of this node's model that every neighbour
    also holds; ``mixed`` is s_i = Σ_j W_ij x̂_j over the neighbours and the node
    itself. Keeping the weighted sum instead of one copy per neighbour is the
    paper's memory-efficient form: two vectors whatever the degree.
    ``sequence`` counts the deltas sent (and, synchronously, received per edge).
    """

    def __init__(self, initial: torch.Tensor, self_weight: float, weights: dict[int, float]):
        self.self_weight = float(self_weight)
        self.weights = dict(weights)
        self.own = initial.detach().clone()
        # Σ_j W_ij x̂_j = x̂ when every copy starts equal, since each row of W sums to one.
        self.mixed = initial.detach().clone()
        self.sequence = 0

    def add_own(self, delta: torch.Tensor) -> None:
        """Apply this node's decoded delta: x̂_i += q_i, and its share of s_i."""
        self.own.add_(delta)
        self.mixed.add_(delta, alpha=self.self_weight)

    def add_neighbor(self, peer: int, delta: torch.Tensor) -> None:
        """Apply neighbour ``peer``'s decoded delta to s_i: s_i += W_ij q_j."""
        self.mixed.add_(delta, alpha=self.weights[peer])

    def start_from(self, own: torch.Tensor, neighbours: dict[int, torch.Tensor]) -> None:
        """Set x̂_i = ``own`` and s_i = W_ii x̂_i + Σ_j W_ij x̂_j from the neighbours' exact models."""
        self.own.copy_(own)
        self.mixed.copy_(own).mul_(self.self_weight)
        for peer, model in neighbours.items():
            self.mixed.add_(model, alpha=self.weights[peer])

    def state_dict(self) -> dict[str, Any]:
        return {"own": self.own.clone(), "mixed": self.mixed.clone(), "sequence": self.sequence}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_keys("public-copies", state, {"own", "mixed", "sequence"})
        self.own.copy_(state["own"])
        self.mixed.copy_(state["mixed"])
        self.sequence = int(state["sequence"])


class NeighbourCopies(PublicCopies):
    """Public copies that also keep each neighbour's x̂_j, for rules that look at them one by one.

    A robust aggregator (clipping, trimmed mean, median) cannot work on the weighted sum s_i
    alone; an attacker forges from what it knows of each neighbour.
    """

    def __init__(self, initial: torch.Tensor, self_weight: float, weights: dict[int, float]):
        super().__init__(initial, self_weight, weights)
        self.neighbours = {peer: initial.detach().clone() for peer in sorted(weights)}

    def add_neighbor(self, peer: int, delta: torch.Tensor) -> None:
        super().add_neighbor(peer, delta)
        self.neighbours[peer].add_(delta)

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "neighbours": {peer: copy.clone() for peer, copy in self.neighbours.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict({key: value for key, value in state.items() if key != "neighbours"})
        for peer, copy in self.neighbours.items():
            copy.copy_(state["neighbours"][peer])


class EdgeReferences:
    """Per-edge references of one node for pairwise gossip (SwarmSGD).

    ``sent[j]`` is neighbour j's copy of this node's model (both ends hold it,
    identical); ``received[j]`` is this node's copy of j's model. Each direction
    of each edge counts its deltas, so a lost, repeated or reordered packet is
    caught as a sequence gap instead of silently corrupting a reference.
    """

    def __init__(self, initial: torch.Tensor, neighbors: Iterable[int]):
        self.neighbors = sorted(int(j) for j in neighbors)
        self.sent = {j: initial.detach().clone() for j in self.neighbors}
        self.received = {j: initial.detach().clone() for j in self.neighbors}
        self.sent_sequence = dict.fromkeys(self.neighbors, 0)
        self.received_sequence = dict.fromkeys(self.neighbors, 0)

    def delta_to(self, peer: int, x: torch.Tensor) -> torch.Tensor:
        """Return x − sent[peer]: what ``peer`` does not know of ``x`` yet."""
        return x - self.sent[peer]

    def commit_sent(self, peer: int, decoded: torch.Tensor) -> None:
        """Apply the decoded delta just sent to ``peer``, exactly as ``peer`` applies it."""
        self.sent[peer].add_(decoded)
        self.sent_sequence[peer] += 1

    def commit_received(self, peer: int, decoded: torch.Tensor) -> None:
        """Apply a decoded delta from ``peer`` to this node's copy of its model."""
        self.received[peer].add_(decoded)
        self.received_sequence[peer] += 1

    def start_from(self, own: torch.Tensor, neighbours: dict[int, torch.Tensor]) -> None:
        """Set both references of every edge from exact models: ``own``, and each neighbour's."""
        for peer, model in neighbours.items():
            self.sent[peer].copy_(own)
            self.received[peer].copy_(model)

    def state_dict(self) -> dict[str, Any]:
        return {
            "neighbors": list(self.neighbors),
            "sent": {j: t.clone() for j, t in self.sent.items()},
            "received": {j: t.clone() for j, t in self.received.items()},
            "sent_sequence": dict(self.sent_sequence),
            "received_sequence": dict(self.received_sequence),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_keys(
            "edge-references", state, {"neighbors", "sent", "received", "sent_sequence", "received_sequence"}
        )
        if list(state["neighbors"]) != self.neighbors:
            raise ValueError(f"edge references are for neighbours {state['neighbors']}, not {self.neighbors}")
        for j in self.neighbors:
            self.sent[j].copy_(state["sent"][j])
            self.received[j].copy_(state["received"][j])
            self.sent_sequence[j] = int(state["sent_sequence"][j])
            self.received_sequence[j] = int(state["received_sequence"][j])
