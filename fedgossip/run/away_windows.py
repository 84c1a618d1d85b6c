"""``--async`` under ``--availability``: each interaction window, who is online and who is away.

Window t is every node's t-th interaction: the schedule's row t − 1, drawn alike on
every rank from the run seed (``markov`` durations count windows). A rank's nodes go
through the windows together, so at the start of each the rank marks its nodes online
or away:

- an online node takes its burst of local steps and offers to a random neighbour that
  the schedule has online in that window;
- an away node takes no step, makes no offer and serves no one: the rank's transport
  holds its packets, in order, until it is back, and hands them over then (an offer in
  flight to it is answered when it returns, or at the next cut, where every node is back).

Two rules keep this free of deadlock and close to the schedule:

- **No node waits on an away one.** A node whose previous offer is still unanswered
  when the next is due (its partner may be away) waits at most a window (:meth:`AwayWindows.patience`),
  then makes no offer in that window and goes on training. Only the cuts wait without
  bound (checkpoints, the end), and every node is back for them:
  :func:`~fedgossip.algorithms.asynchronous.finish`.
- **Time passes for an away node.** With several ranks, an away window lasts as long as
  the node's online windows have on average, its rank serving the others meanwhile;
  else a rank whose nodes were away would run ahead, and a neighbour's online bit in
  the schedule would say nothing of its actual state. On one rank all nodes move window
  by window together anyway, so there an away window costs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from fedgossip.comm.async_transport import AsyncTransport
from fedgossip.topology.availability import AvailabilitySchedule

__all__ = ["AwayWindows"]


class AwayWindows:
    """Which of a rank's nodes are online in the window under way; the time an away window takes."""

    def __init__(
        self, schedule: AvailabilitySchedule, transport: AsyncTransport, hosted: Sequence[int], paced: bool
    ) -> None:
        """``paced``: let an away window last as long as an online one (several ranks)."""
        self._schedule = schedule
        self._transport = transport
        self._hosted = tuple(hosted)
        self._paced = paced
        self._online_s = dict.fromkeys(self._hosted, 0.0)  # seconds of each node's online windows, summed
        self._online_windows = dict.fromkeys(self._hosted, 0)
        self.online: np.ndarray = np.ones(schedule.num_nodes, dtype=bool)  # the window's mask

    def begin(self, interaction: int) -> None:
        """Start window ``interaction`` (from 1): the rank's away nodes are served no more until back."""
        self.online = self._schedule.online(interaction - 1)
        away = self._transport.away
        away.clear()
        away.update(node for node in self._hosted if not self.online[node])

    def is_online(self, node: int) -> bool:
        return bool(self.online[node])

    def count(self, node: int, seconds: float) -> None:
        """Count an online window of ``node`` that took ``seconds`` (what its away windows last)."""
        self._online_s[node] += seconds
        self._online_windows[node] += 1

    def patience(self, node: int) -> float:
        """Return how long ``node`` may wait for a reply before its next offer: a mean window (paced).

        On one rank a partner online in the window answers at the next poll, and one
        away cannot come back while the rank waits: there it waits for nothing.
        """
        windows = self._online_windows[node]
        return self._online_s[node] / windows if self._paced and windows else 0.0

    def sit_out(self, node: int, between_polls: Callable[[], None]) -> None:
        """Let an away window of ``node`` pass, serving the rank's other nodes (paced runs only)."""
        seconds = self.patience(node)
        if not seconds:
            return
        deadline = time.perf_counter() + seconds
        while (left := deadline - time.perf_counter()) > 0:
            self._transport.poll()
            between_polls()
            time.sleep(min(left, 0.001))  # an away device computes nothing: leave the core to the others
