"""The asynchronous schedule (``--async``): local steps and pairwise gossip, no rounds.

Each node initiates ``--rounds`` interactions, each after its own draw of local
steps. Nobody waits on a round. A rank interleaves its nodes round-robin: each
takes its burst of local steps, waits for the reply to its previous offer if it
has not come yet, and makes its next offer; between any two local steps the
rank polls, which serves every one of its nodes (co-hosted pairs interact in
memory, others by MPI). Evaluations follow the same cadence as rounds do,
counted in interactions, but never block: see
:class:`~fedgossip.run.evaluator.Evaluations`.

Checkpoints (``--checkpoint-every K``, counted in interactions) are taken at a
*consistent cut*: when a rank's nodes reach a multiple of K the rank stops
initiating, waits for its nodes' offers to be answered and serves the others
until every rank got there (:func:`~fedgossip.algorithms.asynchronous.finish`).
Then no offer or reply is in flight, both ends of every edge agree on their
references and sequence numbers, and every node has initiated exactly the same
number of interactions: the state a resumed run continues from. Local step
counts differ (each node draws its own), and what happens after the cut
depends on timing, so an asynchronous resume is consistent but not a replay. A
SIGTERM is honoured at the next such cut.

Under ``--availability`` each interaction is a window in which a node is online or
away (:mod:`fedgossip.run.away_windows`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fedgossip.algorithms.asynchronous import finish
from fedgossip.comm.async_transport import AsyncTransport
from fedgossip.run.away_windows import AwayWindows
from fedgossip.run.context import Outcome, RunContext
from fedgossip.run.evaluator import Evaluations
from fedgossip.run.node import Node
from fedgossip.run.privacy_gate import over_budget

__all__ = ["interact", "run_interactions"]


def run_interactions(ctx: RunContext, resumed: dict[str, Any] | None = None) -> Outcome:
    """Run every interaction of this rank's nodes, then the termination; rank 0 writes the evaluations.

    ``resumed`` is the schedule's state in the checkpoint a resumed run starts from.
    """
    cadence, config, nodes = ctx.cadence, ctx.plan.config, ctx.nodes
    gossips = [node.gossip for node in nodes]
    transport = gossips[0].transport  # shared by the rank's nodes
    transport.open()  # collective: every rank, before any node sends
    # rank 0 shows each evaluation once its reductions complete, some interactions after it was taken
    evaluations = Evaluations(ctx.evaluator, shown=lambda step, figures: ctx.report(ctx.info(step, figures)))
    windows = _away_windows(ctx, transport)
    first = 1
    if resumed is not None:
        first = int(resumed["interaction"]) + 1
        evaluations.load_state_dict(resumed["evaluations"])

    for interaction in range(first, config.rounds + 1):
        ctx.begin(interaction)
        if windows is not None:
            windows.begin(interaction)
        for node in nodes:
            interact(node, transport, evaluations.progress, windows)
            node.rounds_ended = interaction  # the windows it has had: what online_rounds counts
        if cadence.evaluates(interaction) and interaction < config.rounds:
            evaluations.take(interaction, ctx.wall())  # the last one comes after every reply
        ctx.report(ctx.info(interaction))
        if cadence.checkpoints(interaction):
            finish(gossips, between_polls=evaluations.progress)  # the consistent cut
            evaluations.settle()
            stop = ctx.preempted()
            wall = ctx.wall()
            loop = {"interaction": interaction, "wall_s": wall, "evaluations": evaluations.state_dict()}
            ctx.checkpoint(interaction, loop, wall)
            if stop:
                evaluations.finish(ctx.writer)  # the evaluations so far; a resume rewrites them all
                transport.free()
                return Outcome("preempted", {"preempted_round": interaction}, stopped_at=interaction)
    finish(gossips, between_polls=evaluations.progress)
    # the last evaluation comes after every reply, so it counts every interaction
    evaluations.take(config.rounds, ctx.wall())
    evaluations.finish(ctx.writer)
    transport.free()
    return Outcome()


def _away_windows(ctx: RunContext, transport: AsyncTransport) -> AwayWindows | None:
    """Return who is online in each window under --availability (None: everyone, always)."""
    schedule, placement = ctx.plan.availability, ctx.plan.placement
    if schedule is None:
        return None
    hosted = [node.id for node in ctx.nodes]
    return AwayWindows(schedule, transport, hosted, paced=placement.ranks > 1)


def interact(
    node: Node,
    transport: AsyncTransport,
    between_steps: Callable[[], None],
    windows: AwayWindows | None = None,
) -> None:
    """Take ``node``'s next burst of local steps, then its next offer (past its privacy budget, neither).

    ``between_steps`` runs after every local step, with the poll (the evaluations' reductions).
    ``windows``: who is online in the window under way (--availability); an away node lets it pass.
    """
    gossip, privacy = node.gossip, node.privacy
    node.end_round()  # the previous burst and interaction, served offers included, are one round
    if windows is not None and not windows.is_online(node.id):
        windows.sit_out(node.id, between_steps)  # no steps, no offer; its packets wait for its return
        return
    started = time.perf_counter()
    steps = node.draw_steps()
    if over_budget(node, steps):
        # Past its budget a node neither trains nor offers; it reaches its remaining
        # checkpoints at once and keeps serving the others' offers until the end.
        privacy.stopped = True
    if privacy is not None and privacy.stopped:
        return
    # dp-update privatizes the model's change over the whole burst, so nothing may reach or
    # leave the node before its end: a neighbour served mid-burst would see the raw update. Its
    # packets wait until the burst is done (more staleness); the rank's other nodes are served.
    closed = (node.id,) if privacy is not None and privacy.mechanism.level == "node" else ()

    def each_step() -> None:
        gossip.steps += 1
        transport.poll(closed)
        between_steps()

    node.train_privately(steps, each_step)
    if windows is None:
        gossip.wait_for_reply()  # at most one offer in flight
        gossip.offer(node.flat)
        return
    # Its partner may be away: it waits a window at most, then goes on with the offer still open
    # and makes none in this window (no node may wait on an away one: two ranks could wait on
    # each other's away nodes, neither reaching the next window where they come back).
    gossip.wait_for_reply(at_most=windows.patience(node.id))
    if not gossip.waiting_for_reply:
        gossip.offer(node.flat, windows.online)
    windows.count(node.id, time.perf_counter() - started)
