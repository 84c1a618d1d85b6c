"""Co-hosted nodes evaluated as one vectorized computation, where they can be: the evaluations' fast path.

:class:`~fedgossip.local.batched_evaluation.BatchedEvaluation` scores the nodes that
share a test set (the run's, which build_nodes hands every node as the same tensors) as
one vmapped computation. It equals evaluating them one by one up to float rounding (a
loss's last digits), so ``--one-by-one`` keeps the per-node loop where metrics must
agree to the bit across placements. Nodes it cannot serve — another architecture, a
hooked model, a test set of their own — are evaluated one by one, and the reason is
logged once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fedgossip.errors import ConfigError
from fedgossip.local.evaluate import Evaluation, evaluate
from fedgossip.run.node import Node

if TYPE_CHECKING:
    from fedgossip.local.batched_evaluation import BatchedEvaluation

__all__ = ["VectorizedEvaluation"]

_log = logging.getLogger(__name__)


class VectorizedEvaluation:
    """Evaluate a rank's nodes' own models, those sharing a test set together."""

    def __init__(self) -> None:
        self._batches: dict[tuple[int, ...], BatchedEvaluation | None] = {}  # by the nodes it evaluates

    def evaluate(self, nodes: list[Node]) -> list[Evaluation]:
        """Return each node's accuracy and loss on its test set, in the order of ``nodes``."""
        results: dict[int, Evaluation] = {}
        # by identity, not by value: comparing the test sets would cost what batching them saves
        groups: dict[tuple[int, int], list[Node]] = {}
        for node in nodes:
            groups.setdefault((id(node.test_x), id(node.test_y)), []).append(node)
        for group in groups.values():
            scores = self._batched(group) if len(group) > 1 else None
            if scores is None:
                scores = [evaluate(node.model, node.test_x, node.test_y) for node in group]
            results.update((node.id, score) for node, score in zip(group, scores, strict=True))
        return [results[node.id] for node in nodes]

    def _batched(self, nodes: list[Node]) -> list[Evaluation] | None:
        """Evaluate ``nodes`` (one test set) as one batch; None where they cannot be, said once."""
        # imported here: torch.func costs start-up time a rank of one node never needs
        from fedgossip.local.batched_evaluation import BatchedEvaluation, stackable

        key = tuple(node.id for node in nodes)
        if key not in self._batches:
            models, params = [node.model for node in nodes], [node.params for node in nodes]
            reason = stackable(models, params)
            if reason is not None:
                _log.info("[node %d] evaluating %d nodes one by one: %s", key[0], len(key), reason)
            self._batches[key] = None if reason else BatchedEvaluation(models, params)
        batch = self._batches[key]
        if batch is None:
            return None
        try:
            return batch.evaluate(nodes[0].test_x, nodes[0].test_y)
        except ConfigError as exc:  # a model was hooked since: from now on, one by one
            _log.info("[node %d] evaluating %d nodes one by one: %s", key[0], len(key), exc)
            self._batches[key] = None
            return None
