"""The synchronous schedule: rounds of local steps, each ended by the algorithm's exchange.

Every rank runs the same rounds: its nodes' plugins' conversations (if any), the
privacy gate, the local steps, then one conversation per node
(:meth:`Algorithm.conversation`), each stage answered together by the network
for all the rank's nodes; evaluations and checkpoints follow the cadence, and a
SIGTERM on any rank stops every rank after the same round, with a checkpoint.
"""

from __future__ import annotations

from fedgossip.run.context import Outcome, RunContext
from fedgossip.run.local_rounds import train_nodes
from fedgossip.run.privacy_gate import nodes_over_budget

__all__ = ["run_rounds"]


def run_rounds(ctx: RunContext, first_round: int) -> Outcome:
    """Run rounds ``first_round .. --rounds`` on this rank; return how the run ended."""
    nodes, cadence, config = ctx.nodes, ctx.cadence, ctx.plan.config
    for round_index in range(first_round, config.rounds + 1):
        ctx.begin(round_index)
        if ctx.plan.plugins:  # every rank alike: the plugins' messages before the round's steps
            ctx.network.converse({n.id: n.plugin_conversation(round_index) for n in nodes if n.plugins})
        steps = {node.id: node.steps_in(round_index) for node in nodes}
        over = nodes_over_budget(steps, nodes, ctx.comm, config.dp_target_epsilon)
        if over:
            for node in nodes:
                if node.id in over:
                    node.privacy.stopped = True
            done = round_index - 1
            if not cadence.evaluates(done):  # the last round done is not evaluated yet
                ctx.evaluator.evaluate(done, ctx.wall(), ctx.writer)
            budget = {"round": done, "nodes": over, "target_epsilon": config.dp_target_epsilon}
            return Outcome("budget-exhausted", {"budget": budget})
        train_nodes(nodes, steps, ctx.network, ctx.batched)
        ctx.network.converse({node.id: node.algorithm.conversation(node.flat, round_index) for node in nodes})
        for node in nodes:
            node.end_round(round_index)
        shown = None
        if cadence.evaluates(round_index):
            shown = ctx.evaluator.evaluate(round_index, ctx.wall(), ctx.writer)
        ctx.report(ctx.info(round_index, shown))
        last = round_index == config.rounds
        stop = not last and ctx.preempted()
        if stop or cadence.checkpoints(round_index):
            ctx.checkpoint(round_index)
        if stop:
            return Outcome("preempted", {"preempted_round": round_index}, stopped_at=round_index)
    return Outcome()
