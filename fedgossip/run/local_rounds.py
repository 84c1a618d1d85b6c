"""The local steps of one synchronous round, for every node of the rank.

Three ways, one result: nodes that exchange gradients (comp-ams) step in lockstep,
the network averaging every step's gradient; otherwise co-hosted nodes train as
one batched computation where :class:`~fedgossip.local.batched.BatchedTraining`
can serve them, and one after another where it cannot.
"""

from __future__ import annotations

from typing import Protocol

from fedgossip.comm.network import NodeNetwork
from fedgossip.run.node import Node

__all__ = ["BatchedRounds", "train_nodes"]


class BatchedRounds(Protocol):
    """Trains a round of several nodes at once; returns the nodes it left for the per-node loop."""

    def train(self, nodes: list[Node], steps: dict[int, int]) -> list[Node]: ...


def train_nodes(
    nodes: list[Node], steps: dict[int, int], network: NodeNetwork, batched: BatchedRounds | None = None
) -> None:
    """Take each node's ``steps[node.id]`` local steps of this round."""
    training = [node for node in nodes if steps[node.id]]
    if not training:
        return
    if training[0].algorithm.exchanges_gradients:
        _lockstep(training, steps, network)
        return
    if batched is not None and len(training) > 1:
        # Under --availability the online set changes every round: batching every node that can
        # train, an offline one with 0 steps, keeps one batch for the run instead of one per set.
        varying = training[0].algorithm.ctx.availability is not None
        batch = [node for node in nodes if node.trainer is not None] if varying else training
        training = [node for node in batched.train(batch, steps) if steps[node.id]]
    for node in training:
        node.train_privately(steps[node.id])


def _lockstep(nodes: list[Node], steps: dict[int, int], network: NodeNetwork) -> None:
    """Step every node together, the network replacing each step's gradient by the average.

    Only sample-level privacy (dp-sgd) combines with exchanged gradients, and it
    privatizes inside each gradient: the round is charged once it is over.
    """
    steppers = {node.id: node.trainer.stepwise(steps[node.id]) for node in nodes}
    by_id = {node.id: node for node in nodes}
    gradients = {}
    for node_id, stepper in steppers.items():
        gradients[node_id] = next(stepper)  # comp-ams takes a fixed number of steps ≥ 1 everywhere
    while gradients:
        network.converse(
            {node_id: by_id[node_id].algorithm.gradient_conversation(g) for node_id, g in gradients.items()}
        )
        following = {}
        for node_id in gradients:
            try:
                following[node_id] = steppers[node_id].send(None)
            except StopIteration as done:
                by_id[node_id].finish_steps(done.value, steps[node_id])
        gradients = following
