"""Exact models between neighbours, once: how compressed gossip re-syncs its copies after lost nodes.

After ``--on-failure continue`` drops lost nodes (:mod:`fedgossip.run.recovery`), the graph has
new edges and the old public copies and per-edge references no longer match on both ends.
Rather than restarting them at zero (a 4-bit code of a whole model, not of a small delta, which
costs many rounds of accuracy), each node sends its model uncompressed to its neighbours once;
both ends of every edge then start their copies from the same exact values. These float32
packets are counted like any other.
"""

from __future__ import annotations

import torch

from fedgossip.algorithms.context import GossipContext
from fedgossip.comm.codec import Codec
from fedgossip.comm.conversation import Conversation, Exchange
from fedgossip.compress.none import NoCompression

__all__ = ["exact_exchange", "exact_packet_bytes"]


def exact_packet_bytes(count: int) -> int:
    """Return the size of one uncompressed packet of ``count`` values: what a network must accept."""
    return Codec(NoCompression(), 0, count).max_packet


def exact_exchange(
    ctx: GossipContext, vector: torch.Tensor, to: tuple[int, ...], expected: tuple[int, ...]
) -> Conversation:
    """Send ``vector`` uncompressed to ``to``; return what ``expected`` sent, by sender (a conversation).

    One stage even when both are empty, so that every node of a rank asks for the same stages;
    CHOCO under --availability asks every round, and mostly has nothing to catch up.
    """
    if not to and not expected:
        yield Exchange({}, [])
        return {}
    codec = Codec(NoCompression(), ctx.node, vector.numel(), ctx.seed)
    outgoing = dict.fromkeys(to, codec.pack(vector.detach())) if to else {}
    received = yield Exchange(outgoing, list(expected))
    return {peer: codec.unpack(received[peer], peer).to(vector.device) for peer in expected}
