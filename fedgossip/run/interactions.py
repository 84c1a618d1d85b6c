"""The loop of an asynchronous run (``--async``): local steps and pairwise gossip, no rounds.

Each rank initiates ``--rounds`` interactions, each after its own draw of
local steps, and polls for others' offers between its steps. Nobody waits on
a round. Evaluation happens at fixed interaction counts on every rank: a rank
evaluates its own model and posts a non-blocking reduction of its parameters
for the average model, which completes while everybody goes on (rank 0
evaluates the average when it does). The per-rank values are gathered once at
the end and written as for a synchronous run, one row per checkpoint, with
the wall time of the slowest rank to reach it.

Checkpoints (``--checkpoint-every K``, counted in interactions) are taken at a
*consistent cut*: when a rank reaches a multiple of K it stops initiating,
waits for its own offer's reply and serves the others until every rank got
there (the termination barrier of :meth:`AsyncSwarm.finish`). Then no offer or
reply is in flight, both ends of every edge agree on their references and
sequence numbers, and each rank has initiated exactly the same number of
interactions: the state a resumed run continues from. Its local step counts
differ (each rank draws its own), and what happens after the cut depends on
timing, so an asynchronous resume is consistent but not a replay. A SIGTERM
is honoured at the next such cut.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from mpi4py import MPI

from fedgossip.local.evaluate import evaluate, evaluate_parameters
from fedgossip.records import MetricsWriter
from fedgossip.run.checkpointing import write_checkpoint
from fedgossip.run.preemption import Preemption

if TYPE_CHECKING:
    from fedgossip.run.engine import RoundInfo, _RankState

__all__ = ["run_async"]


def run_async(
    node: _RankState,
    writer: MetricsWriter | None,
    make_info: Callable[[int], RoundInfo],
    on_round: Callable[[RoundInfo], None] | None,
    names: tuple[str, ...],
    run_dir: Path,
    resumed: dict[str, Any] | None = None,
    preemption: Preemption | None = None,
) -> int | None:
    """Run every interaction of this rank, then the termination; rank 0 writes the evaluations.

    ``names`` are the per-rank values ``node.per_rank_values`` returns, in order;
    ``resumed`` is the loop state of the checkpoint a resumed run starts from.
    Return the interaction a SIGTERM stopped the run after, or None when it ran to the end.
    """
    config, gossip, flat = node.config, node.gossip, node.params.flat
    checkpoints = _Checkpoints(node, names)
    started = time.perf_counter()
    first = 1
    if resumed is not None:
        first = int(resumed["interaction"]) + 1
        checkpoints.load_state_dict(resumed["evaluations"])
        started -= float(resumed["wall_s"])
    privacy = node.privacy
    for interaction in range(first, config.rounds + 1):
        steps = node.local_steps.draw(node.steps_rng) if node.trainer is not None else 0
        if privacy is not None and not privacy.stopped and privacy.would_exceed(steps):
            # Past its budget a node neither trains nor offers; it reaches its remaining
            # checkpoints at once and keeps serving the others' offers until the end.
            privacy.stopped = True
        if privacy is None:
            _local_steps(node, checkpoints, steps, serve=True)
        elif not privacy.stopped:
            serve = privacy.mechanism.level != "node"
            privacy.train(flat, partial(_local_steps, node, checkpoints, steps, serve))
            privacy.spend(steps)
        if privacy is None or not privacy.stopped:
            gossip.wait_for_reply(flat)  # at most one offer in flight
            gossip.offer(flat)
        if interaction % config.eval_every == 0 and interaction < config.rounds:
            checkpoints.take(interaction, time.perf_counter() - started)
        if on_round is not None and node.rank == 0:
            on_round(make_info(interaction))
        every = config.checkpoint_every
        if every and interaction % every == 0 and interaction < config.rounds:
            gossip.finish(flat, between_polls=checkpoints.progress)  # the consistent cut
            checkpoints.settle()
            stop = preemption is not None and preemption.agreed(node.comm)
            wall = time.perf_counter() - started
            loop = {"interaction": interaction, "wall_s": wall, "evaluations": checkpoints.state_dict()}
            write_checkpoint(node, run_dir, interaction, writer, wall, loop)
            if stop:
                checkpoints.finish(writer)  # the evaluations so far; a resume rewrites them all
                return interaction
    gossip.finish(flat, between_polls=checkpoints.progress)
    # the last checkpoint comes after every reply, so it counts every interaction
    checkpoints.take(config.rounds, time.perf_counter() - started)
    checkpoints.finish(writer)
    return None


def _local_steps(node: _RankState, checkpoints: _Checkpoints, steps: int, serve: bool) -> None:
    """Take ``steps`` local steps, serving others' offers between them when ``serve``.

    dp-update privatizes the model's change over the whole burst, so nothing may
    leave the node before its end: a neighbour served mid-burst would see the
    raw update. The neighbours' offers wait until the burst is done (more staleness).
    """
    gossip, flat = node.gossip, node.params.flat
    for _ in range(steps):
        node.train(1)
        gossip.steps += 1
        if serve:
            gossip.poll(flat)
        checkpoints.progress()


class _Checkpoints:
    """This rank's evaluations, and the reductions that form each checkpoint's average model."""

    def __init__(self, node: _RankState, names: tuple[str, ...]):
        self.node = node
        self.names = names
        self.rows: list[np.ndarray] = []  # per checkpoint: interaction, wall time, then _PER_RANK values
        self.scalars: dict[int, dict[str, float]] = {}  # rank 0: average model per checkpoint
        self._pending: list[tuple[int, MPI.Request, np.ndarray]] = []

    def take(self, interaction: int, wall: float) -> None:
        node = self.node
        own = evaluate(node.model, node.test_x, node.test_y)
        values = node.per_rank_values(own.accuracy, own.loss)
        self.rows.append(np.concatenate([[interaction, wall], values]))
        flat = node.params.flat.detach().cpu().numpy().astype(np.float64)
        # the parameters and their squared norm: the sum gives the average and the consensus distance
        buffer = np.append(flat, float(np.dot(flat, flat)))
        request = node.comm.Iallreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        self._pending.append((len(self.rows) - 1, request, buffer))

    def progress(self) -> None:
        """Handle the reductions that have completed; never waits."""
        while self._pending and self._pending[0][1].Test():
            self._complete(*self._pending.pop(0))

    def settle(self) -> None:
        """Wait for every pending reduction (they complete once every rank has posted it)."""
        for index, request, buffer in self._pending:
            request.Wait()
            self._complete(index, request, buffer)
        self._pending = []

    def state_dict(self) -> dict[str, Any]:
        """Return the evaluations taken so far (after :meth:`settle`): own rows, rank 0's averages."""
        if self._pending:
            raise RuntimeError("evaluations still being reduced; call settle first")
        width = 2 + len(self.names)
        rows = np.array(self.rows, dtype=np.float64).reshape(len(self.rows), width)
        scalars = [[index, s["avg_model_accuracy"], s["avg_model_loss"], s["consensus_distance"]]
                   for index, s in sorted(self.scalars.items())]  # fmt: skip
        return {"rows": rows, "scalars": np.array(scalars, dtype=np.float64).reshape(len(scalars), 4)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        rows = np.asarray(state["rows"], dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != 2 + len(self.names):
            raise ValueError(
                f"saved evaluations have shape {rows.shape}, expected [n, {2 + len(self.names)}]"
            )
        self.rows = list(rows)
        self.scalars = {
            int(index): {"avg_model_accuracy": acc, "avg_model_loss": loss, "consensus_distance": distance}
            for index, acc, loss, distance in np.asarray(state["scalars"], dtype=np.float64).tolist()
        }

    def finish(self, writer: MetricsWriter | None) -> None:
        self.settle()
        node = self.node
        rows = np.array(self.rows, dtype=np.float64)
        gathered = np.empty((node.comm.Get_size(), *rows.shape), dtype=np.float64) if node.rank == 0 else None
        node.comm.Gather(rows, gathered, root=0)
        if writer is None:
            return
        for index in range(rows.shape[0]):
            at = gathered[:, index, :]
            per_rank = {name: at[:, 2 + i] for i, name in enumerate(self.names)}
            writer.append(int(at[0, 0]), float(at[:, 1].max()), per_rank, self.scalars[index])

    def _complete(self, index: int, request: MPI.Request, buffer: np.ndarray) -> None:
        node = self.node
        if node.rank != 0:
            return
        size = node.comm.Get_size()
        average = buffer[:-1] / size
        consensus = buffer[-1] / size - float(np.dot(average, average))
        result = evaluate_parameters(node.model, node.params.flat, average, node.test_x, node.test_y)
        self.scalars[index] = {
            "avg_model_accuracy": result.accuracy,
            "avg_model_loss": result.loss,
            "consensus_distance": max(consensus, 0.0),  # the difference of sums can round below 0
        }
