"""The asynchronous schedule (``--async``): local steps and pairwise gossip, no rounds.

Each rank initiates ``--rounds`` interactions, each after its own draw of
local steps, and polls for others' offers between its steps. Nobody waits on
a round. Evaluations follow the same cadence as rounds do, counted in
interactions, but never block: see :class:`~fedgossip.run.evaluator.Evaluations`.

Checkpoints (``--checkpoint-every K``, counted in interactions) are taken at a
*consistent cut*: when a rank reaches a multiple of K it stops initiating,
waits for its own offer's reply and serves the others until every rank got
there (the termination barrier of :meth:`AsyncGossip.finish`). Then no offer or
reply is in flight, both ends of every edge agree on their references and
sequence numbers, and each rank has initiated exactly the same number of
interactions: the state a resumed run continues from. Its local step counts
differ (each rank draws its own), and what happens after the cut depends on
timing, so an asynchronous resume is consistent but not a replay. A SIGTERM
is honoured at the next such cut.
"""

from __future__ import annotations

from typing import Any

from fedgossip.run.context import Outcome, RunContext
from fedgossip.run.evaluator import Evaluations
from fedgossip.run.privacy_gate import over_budget

__all__ = ["run_interactions"]


def run_interactions(ctx: RunContext, resumed: dict[str, Any] | None = None) -> Outcome:
    """Run every interaction of this rank, then the termination; rank 0 writes the evaluations.

    ``resumed`` is the schedule's state in the checkpoint a resumed run starts from.
    """
    node, cadence, config = ctx.node, ctx.cadence, ctx.plan.config
    gossip, flat = node.gossip, node.flat
    evaluations = Evaluations(ctx.evaluator)
    first = 1
    if resumed is not None:
        first = int(resumed["interaction"]) + 1
        evaluations.load_state_dict(resumed["evaluations"])
    privacy = node.privacy
    # dp-update privatizes the model's change over the whole burst, so nothing may leave the
    # node before its end: a neighbour served mid-burst would see the raw update. The
    # neighbours' offers wait until the burst is done (more staleness).
    serve = privacy is None or privacy.mechanism.level != "node"

    def each_step() -> None:
        gossip.steps += 1
        if serve:
            gossip.poll(flat)
        evaluations.progress()

    for interaction in range(first, config.rounds + 1):
        ctx.step = interaction
        steps = node.draw_steps()
        if over_budget(node, steps):
            # Past its budget a node neither trains nor offers; it reaches its remaining
            # checkpoints at once and keeps serving the others' offers until the end.
            privacy.stopped = True
        active = privacy is None or not privacy.stopped
        if active:
            node.train_privately(steps, each_step)
            gossip.wait_for_reply(flat)  # at most one offer in flight
            gossip.offer(flat)
        if cadence.evaluates(interaction) and interaction < config.rounds:
            evaluations.take(interaction, ctx.wall())  # the last one comes after every reply
        ctx.report(ctx.info(interaction))
        if cadence.checkpoints(interaction):
            gossip.finish(flat, between_polls=evaluations.progress)  # the consistent cut
            evaluations.settle()
            stop = ctx.preempted()
            wall = ctx.wall()
            loop = {"interaction": interaction, "wall_s": wall, "evaluations": evaluations.state_dict()}
            ctx.checkpoint(interaction, loop, wall)
            if stop:
                evaluations.finish(ctx.writer)  # the evaluations so far; a resume rewrites them all
                return Outcome("preempted", {"preempted_round": interaction}, stopped_at=interaction)
    gossip.finish(flat, between_polls=evaluations.progress)
    # the last evaluation comes after every reply, so it counts every interaction
    evaluations.take(config.rounds, ctx.wall())
    evaluations.finish(ctx.writer)
    return Outcome()
