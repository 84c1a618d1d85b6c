"""The synchronous schedule: rounds of local steps, each ended by the algorithm's exchange.

Every rank runs the same rounds: its nodes' plugins' conversations (if any), the
privacy gate, the local steps, then one conversation per node
(:meth:`Algorithm.conversation`), each stage answered together by the network
for all the rank's nodes; evaluations and checkpoints follow the cadence, and a
SIGTERM on any rank stops every rank after the same round, with a checkpoint.
With ``--on-failure continue`` a lost rank sends the survivors back to the start of
the round under way, without it (:mod:`fedgossip.run.recovery`).
"""

from __future__ import annotations

from mpi4py import MPI

from fedgossip.comm.ulfm import is_rank_lost
from fedgossip.run.context import Outcome, RunContext
from fedgossip.run.local_rounds import train_nodes
from fedgossip.run.privacy_gate import nodes_over_budget

__all__ = ["run_rounds"]


def run_rounds(ctx: RunContext, first_round: int) -> Outcome:
    """Run rounds ``first_round .. --rounds`` on this rank; return how the run ended."""
    recovery = ctx.recovery
    round_index = first_round
    while round_index <= ctx.plan.config.rounds:
        if recovery is not None:
            recovery.begin_round(ctx, round_index)
        try:
            outcome = _run_round(ctx, round_index)
        except MPI.Exception as exc:
            if recovery is None or not is_rank_lost(exc):
                raise
            round_index = recovery.go_on(ctx, round_index, exc)
            continue
        if outcome is not None:
            return outcome
        round_index += 1
    return Outcome()


def _run_round(ctx: RunContext, round_index: int) -> Outcome | None:
    """Run round ``round_index``; return how the run ended if it ends here (None: it goes on)."""
    nodes, cadence, config = ctx.nodes, ctx.cadence, ctx.plan.config
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
    if ctx.recovery is not None:
        ctx.recovery.end_round(ctx.comm)  # no survivor is ever more than one round ahead of another
    ctx.report(ctx.info(round_index, shown))
    last = round_index == config.rounds
    stop = not last and ctx.preempted()
    if stop or cadence.checkpoints(round_index):
        ctx.checkpoint(round_index)
    if stop:
        return Outcome("preempted", {"preempted_round": round_index}, stopped_at=round_index)
    return None
