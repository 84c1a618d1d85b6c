"""The emulated network at run time: a rank's uplink, and holding a message until its delivery.

The link model and the ``--link`` spec are in :mod:`fedgossip.settings.link_spec`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from fedgossip.settings.link_spec import Link

__all__ = ["Uplink", "hold_until"]


class Uplink:
    """One rank's outgoing link, which carries its messages one after another.

    The sender calls :meth:`transmit` as it hands each message to MPI and puts
    the returned delivery time in the packet header; the receiver holds the
    message until then with :func:`hold_until`. (To keep a header field that
    carries the send time instead, write ``delivered_at - link.delay(nbytes)``:
    the moment the message starts to leave, from which the receiver's
    ``link.deliver_at`` gives the same delivery time.)
    No ``state_dict``: the state is a wall-clock time, meaningless after a restart.
    """

    def __init__(self, link: Link):
        self.link = link
        self._free_at = -math.inf  # when the last message accepted so far has fully left

    @property
    def free_at(self) -> float:
        """Return when the uplink has sent everything accepted so far."""
        return self._free_at

    def transmit(self, sent_at: float, nbytes: int) -> float:
        """Occupy the uplink with ``nbytes`` handed over at ``sent_at``; return when they are delivered."""
        start = max(sent_at, self._free_at)  # behind whatever this rank is still sending
        self._free_at = start + self.link.transmission(nbytes)
        return self._free_at + self.link.latency_s


def hold_until(
    deadline: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Sleep until the wall-clock ``deadline``; return the seconds waited, 0 if it has passed.

    The return value is the wait the link imposed (``deadline - clock()``), not
    what the operating system overslept. ``deadline`` comes from another rank's
    ``time.time()``, so ranks on different hosts need synchronized clocks (NTP).
    """
    wait = deadline - clock()
    if wait <= 0:
        return 0.0
    sleep(wait)
    return wait
