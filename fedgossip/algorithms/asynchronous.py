"""The contract of an algorithm's asynchronous mode, as the interaction schedule drives it.

The schedule (:mod:`fedgossip.run.interactions`) calls, on each rank and with no
round to wait for: :meth:`AsyncGossip.poll` between local steps, then
:meth:`AsyncGossip.wait_for_reply` and :meth:`AsyncGossip.offer` after each burst,
and :meth:`AsyncGossip.finish` at a consistent cut or at the end.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["GossipStats", "AsyncGossip"]


@dataclass
class GossipStats:
    """What one rank's asynchronous gossip did; all cumulative."""

    interactions: int = 0  # own offers answered
    offers_served: int = 0  # others' offers averaged with
    staleness_steps: int = 0  # local steps taken between each own offer and its reply, summed
    idle_s: float = 0.0  # waiting for a reply or for the others to finish, serving meanwhile

    @property
    def mean_staleness(self) -> float:
        return self.staleness_steps / self.interactions if self.interactions else float("nan")


class AsyncGossip(ABC):
    """One rank's side of an asynchronous protocol: offers made, offers served, and termination."""

    steps: int  # local steps taken so far, counted by the schedule (staleness is measured in them)
    stats: GossipStats

    @abstractmethod
    def offer(self, flat: torch.Tensor) -> None:
        """Start an interaction with a neighbour; its answer is applied by a later poll."""

    @abstractmethod
    def poll(self, flat: torch.Tensor) -> None:
        """Handle whatever has arrived; never waits."""

    @abstractmethod
    def wait_for_reply(self, flat: torch.Tensor) -> None:
        """Serve others until this rank's own interaction is answered."""

    @abstractmethod
    def finish(self, flat: torch.Tensor, between_polls: Callable[[], None] | None = None) -> None:
        """Return once every rank has finished, serving until then (``between_polls`` runs meanwhile)."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Return the state at a quiet moment, after :meth:`finish`."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
