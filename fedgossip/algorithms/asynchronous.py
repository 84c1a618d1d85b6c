"""The contract of an algorithm's asynchronous mode, as the interaction schedule drives it.

Every node has its own :class:`AsyncGossip`: its offers, its answers to others'
and its counters. The co-hosted nodes of a rank share one
:class:`~fedgossip.comm.async_transport.AsyncTransport`, which carries their
packets and which the schedule (:mod:`fedgossip.run.interactions`) polls between
local steps: a poll serves every node of the rank. After each burst of local steps
a node calls :meth:`AsyncGossip.wait_for_reply` and :meth:`AsyncGossip.offer`;
at a consistent cut or at the end, the rank calls :func:`finish` for all its nodes.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fedgossip.comm.async_transport import AsyncTransport

__all__ = ["GossipStats", "AsyncGossip", "finish"]


@dataclass
class GossipStats:
    """What one node's asynchronous gossip did; all cumulative."""

    interactions: int = 0  # own offers answered
    offers_served: int = 0  # others' offers averaged with
    staleness_steps: int = 0  # local steps taken between each own offer and its reply, summed
    idle_s: float = 0.0  # waiting for a reply or for the others to finish, serving meanwhile

    @property
    def mean_staleness(self) -> float:
        return self.staleness_steps / self.interactions if self.interactions else float("nan")


class AsyncGossip(ABC):
    """One node's side of an asynchronous protocol: offers made, offers served, and its counters."""

    node: int  # the node's id
    steps: int  # local steps taken so far, counted by the schedule (staleness is measured in them)
    stats: GossipStats
    transport: AsyncTransport  # the rank's, shared by its nodes

    @abstractmethod
    def offer(self, flat: torch.Tensor, online: np.ndarray | None = None) -> None:
        """Start an interaction with a neighbour; its answer is applied by a later poll.

        ``online``: the window's online mask over the nodes (``--availability``); only
        an online neighbour is offered to, and with none online no offer is made.
        """

    @property
    @abstractmethod
    def waiting_for_reply(self) -> bool:
        """Whether this node's own interaction is still unanswered."""

    def poll(self) -> None:
        """Handle whatever has arrived for any node of the rank; never waits."""
        self.transport.poll()

    def wait_for_reply(self, at_most: float | None = None) -> None:
        """Serve every node of the rank until this node's own interaction is answered.

        ``at_most``: give up after that many seconds (its partner may be away), the offer still open.
        """
        start = time.perf_counter()
        deadline = None if at_most is None else start + at_most
        while self.waiting_for_reply:
            self.transport.poll()
            if not self.waiting_for_reply or (deadline is not None and time.perf_counter() >= deadline):
                break
            self.transport.idle()
        self.stats.idle_s += time.perf_counter() - start

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Return the state at a quiet moment, after :func:`finish`."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""


def finish(gossips: Sequence[AsyncGossip], between_polls: Callable[[], None] | None = None) -> None:
    """Return once every rank has finished, serving offers until then: a consistent cut.

    ``gossips`` are all the nodes of this rank (they share one transport). The rank
    enters the termination barrier only once every one of its nodes' offers is
    answered, and keeps serving until every rank has entered it: then no offer is
    unanswered anywhere, so nothing is in flight. ``between_polls`` is called while
    waiting for the others, so other non-blocking work (the evaluations' reductions)
    progresses too. Every node counts the wait as idle: none of them could go on.
    """
    if not gossips:
        raise ValueError("expecting the gossip of every node of this rank, got none")
    transport = gossips[0].transport
    if any(gossip.transport is not transport for gossip in gossips):
        raise ValueError("the nodes of one rank must share one transport")
    # Nodes away (--availability) come back for the cut: the offers held for them are answered
    # now, or no offer would be answered everywhere and the barrier would never be entered.
    transport.away.clear()
    for gossip in gossips:
        gossip.wait_for_reply()
    waited = transport.finish(between_polls)
    for gossip in gossips:
        gossip.stats.idle_s += waited
