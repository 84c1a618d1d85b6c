"""Co-hosted nodes trained as one vectorized computation, where they can be: the rounds' fast path.

:class:`~fedgossip.local.batched.BatchedTraining` stacks the nodes' parameters and
optimizer state and takes their steps as one vmapped computation. It equals
training them one by one up to float rounding (the stacked matrix products add
up in another order, ~1e-7 per step), so ``--one-by-one`` turns it off where runs
must agree to the bit across placements. Nodes it cannot serve — a privacy
mechanism wrapping the round (dp-update) or privatizing each gradient (dp-sgd), a
slowdown, a plugin, another architecture — are left to the per-node loop, and
the reason is logged once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fedgossip.run.node import Node

if TYPE_CHECKING:
    from fedgossip.local.batched import BatchedTraining

__all__ = ["VectorizedRounds"]

_log = logging.getLogger(__name__)


class VectorizedRounds:
    """Train a round of several co-hosted nodes at once (the rounds' ``BatchedRounds``)."""

    def __init__(self) -> None:
        self._batches: dict[tuple[int, ...], BatchedTraining | None] = {}  # by the nodes it trains

    def train(self, nodes: list[Node], steps: dict[int, int]) -> list[Node]:
        """Train the nodes the batch can serve; return the others, for the per-node loop."""
        eligible = [node for node in nodes if node.privacy is None and not node.plugins]
        if len(eligible) < 2:
            return nodes
        batch = self._batch(eligible)
        if batch is None:
            return nodes
        stats = batch.run([steps[node.id] for node in eligible])
        for node, done in zip(eligible, stats, strict=True):
            node.finish_steps(done, steps[node.id])
        trained = {node.id for node in eligible}
        return [node for node in nodes if node.id not in trained]

    def _batch(self, nodes: list[Node]) -> BatchedTraining | None:
        # imported here: torch.func costs start-up time a rank of one node never needs
        from fedgossip.local.batched import BatchedTraining, batchable

        key = tuple(node.id for node in nodes)
        if key not in self._batches:
            reason = batchable([node.trainer for node in nodes])
            if reason is not None:
                _log.info("[node %d] training %d nodes one by one: %s", key[0], len(key), reason)
                self._batches[key] = None
            else:
                self._batches[key] = BatchedTraining([node.trainer for node in nodes])
        return self._batches[key]
