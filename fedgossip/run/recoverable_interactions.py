"""``--async`` under ``--on-failure continue``: windows of interactions, each ended by a consistent cut.

Surviving a lost rank needs a state every survivor agrees on to go back to, and an
asynchronous run has one only at a consistent cut (:func:`~fedgossip.algorithms.asynchronous.finish`:
every offer answered, nothing in flight). So here the run is cut every ``--eval-every``
interactions: each rank's nodes make their interactions of the window as usual, without
waiting on anyone, then every rank meets at the cut, where the run is evaluated as a
synchronous round is. A lost rank sends the survivors back to the start of the window under
way (:class:`~fedgossip.run.recovery.Recovery`, which treats a window as a round): each
node's gossip is set up afresh on the bridged graph, compressed references are caught up
exactly, and the window runs again without the lost nodes. The price is the wait at each
cut; runs without ``continue`` keep the schedule that never waits (:mod:`fedgossip.run.interactions`).
"""

from __future__ import annotations

from mpi4py import MPI

from fedgossip.algorithms.asynchronous import finish
from fedgossip.comm.ulfm import is_rank_lost
from fedgossip.run.context import Outcome, RunContext
from fedgossip.run.interactions import interact

__all__ = ["run_recoverable_interactions"]


def run_recoverable_interactions(ctx: RunContext) -> Outcome:
    """Run every interaction of this rank's nodes in windows ended by a cut; survive lost ranks."""
    config, recovery = ctx.plan.config, ctx.recovery
    window = max(1, config.eval_every)
    _transport(ctx).open()  # collective: every rank, before any node sends
    start = 1
    while start <= config.rounds:
        end = min(start + window - 1, config.rounds)
        recovery.begin_round(ctx, start)
        try:
            _run_window(ctx, start, end)
        except MPI.Exception as exc:
            if not is_rank_lost(exc):
                raise
            start = recovery.go_on(ctx, start, exc, then=lambda: _transport(ctx).open())
            continue
        start = end + 1
    _transport(ctx).free()
    return Outcome()


def _run_window(ctx: RunContext, start: int, end: int) -> None:
    """Interactions ``start .. end`` of this rank's nodes, then the cut and the evaluation."""
    transport = _transport(ctx)
    for interaction in range(start, end + 1):
        ctx.begin(interaction)
        for node in ctx.nodes:
            interact(node, transport, _nothing)
    finish([node.gossip for node in ctx.nodes])  # the consistent cut: nothing in flight
    shown = ctx.evaluator.evaluate(end, ctx.wall(), ctx.writer)
    ctx.recovery.end_round(ctx.comm)
    ctx.report(ctx.info(end, shown))


def _transport(ctx: RunContext):
    return ctx.nodes[0].gossip.transport  # shared by the rank's nodes


def _nothing() -> None:
    """Nothing to advance between local steps: evaluations wait for the cut."""
