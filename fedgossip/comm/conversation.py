"""What an algorithm asks the network for, one stage at a time: the requests of a conversation.

A node's part in a round is a generator (a *conversation*): it yields a request,
the network answers it once every node of the rank has asked for its own, and the
generator goes on with the answer::

    received = yield Exchange({peer: packet}, [peer])   # -> {peer: buffer}
    samples = yield DataExchange({peer: message}, [peer], max_bytes, sender_of)  # the same, as data
    total = yield Allreduce(vector)                     # -> the sum over every node
    packets = yield Allgather(packet)                   # -> every node's packet, in node order

Running every co-hosted node up to its next request before answering any is what
lets many nodes share one process without one waiting for a message its neighbour
has not yet sent. The rule that keeps it deadlock-free: a message a node expects in
its k-th request is sent by its peer in the peer's k-th request.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Exchange", "DataExchange", "Allreduce", "Allgather", "Conversation", "Request"]


@dataclass
class Exchange:
    """Send ``outgoing[peer] = (buffer, values)`` and receive one packet from each of ``incoming``."""

    outgoing: dict[int, tuple[np.ndarray, int]]
    incoming: Iterable[int] = field(default_factory=tuple)


@dataclass
class DataExchange:
    """Send ``outgoing[peer]`` (a message that is not a model packet, e.g. shared samples) and receive one
    from each of ``incoming``; counted as data bytes, not model bytes.

    ``max_bytes`` bounds what a peer may send (checked before a buffer is allocated), and
    ``sender_of(message)`` reads the node a message says it comes from (its own header's field).
    """

    outgoing: dict[int, np.ndarray]
    incoming: Iterable[int]
    max_bytes: int
    sender_of: Callable[[np.ndarray], int]


@dataclass
class Allreduce:
    """Sum ``vector`` (float32) over every node of the run; the answer is the sum (a new array)."""

    vector: np.ndarray


@dataclass
class Allgather:
    """Gather every node's ``packet`` (all of one size); the answer is a [nodes, size] uint8 array."""

    packet: np.ndarray


Request = Exchange | DataExchange | Allreduce | Allgather
Conversation = Generator[Request, Any, None]
