"""What an algorithm asks the network for, one stage at a time: the requests of a conversation.

A node's part in a round is a generator (a *conversation*): it yields a request,
the network answers it once every node of the rank has asked for its own, and the
generator goes on with the answer::

    received = yield Exchange({peer: packet}, [peer])   # -> {peer: buffer}
    total = yield Allreduce(vector)                     # -> the sum over every node
    packets = yield Allgather(packet)                   # -> every node's packet, in node order

Running every co-hosted node up to its next request before answering any is what
lets many nodes share one process without one waiting for a message its neighbour
has not yet sent. The rule that keeps it deadlock-free: a message a node expects in
its k-th request is sent by its peer in the peer's k-th request.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Exchange", "Allreduce", "Allgather", "Conversation", "Request"]


@dataclass
class Exchange:
    """Send ``outgoing[peer] = (buffer, values)`` and receive one packet from each of ``incoming``."""

    outgoing: dict[int, tuple[np.ndarray, int]]
    incoming: Iterable[int] = field(default_factory=tuple)


@dataclass
class Allreduce:
    """Sum ``vector`` (float32) over every node of the run; the answer is the sum (a new array)."""

    vector: np.ndarray


@dataclass
class Allgather:
    """Gather every node's ``packet`` (all of one size); the answer is a [nodes, size] uint8 array."""

    packet: np.ndarray


Request = Exchange | Allreduce | Allgather
Conversation = Generator[Request, Any, None]
