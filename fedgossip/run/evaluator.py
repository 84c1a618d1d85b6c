"""Evaluation, one formula for both schedules: each node's model, the average model, the consensus distance.

Every evaluation records, per node, the test accuracy and loss of its own model
with its :meth:`~fedgossip.run.node.Node.metrics_row`, and once per run the
average model x̄ = (1/n) Σ x_i (evaluated on rank 0) and the consensus distance
(1/n) Σ ‖x_i − x̄‖², computed exactly: first the sum of the models, then each
node's distance to the mean, then their sum (:class:`AverageModel`). None of
this counts as traffic. In a vectorized run a rank's co-hosted nodes are scored
together where they can be (:class:`~fedgossip.run.vectorized_evaluation.VectorizedEvaluation`).

Synchronous rounds reduce at once (:meth:`Evaluator.evaluate`). Asynchronous runs
must not wait for each other, so :class:`Evaluations` takes the rank's nodes'
values where they stand, posts the reductions without blocking, advances them
between local steps and gathers the rows once at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from mpi4py import MPI

from fedgossip.comm.placement import Placement
from fedgossip.local.evaluate import evaluate, evaluate_parameters
from fedgossip.records import MetricsWriter
from fedgossip.run.node import Node
from fedgossip.run.vectorized_evaluation import VectorizedEvaluation

__all__ = ["AverageModel", "Evaluator", "Evaluations"]


class AverageModel:
    """The average model and consensus distance of one evaluation, reduced in two phases.

    Phase 1 sums the models (float64); phase 2, once the mean is known, sums each
    node's squared distance to it. Blocking, both run at construction; otherwise
    :meth:`advance` moves them on and never waits. Phase 2 uses its own
    communicator: nodes may start phase 2 of one evaluation while others still post
    phase 1 of the next, and collectives on one communicator must come in one order.
    """

    def __init__(
        self,
        models: list[np.ndarray],
        layout: list[int],
        comms: tuple[MPI.Intracomm, MPI.Intracomm],
        blocking: bool,
        size: int | None = None,
    ):
        self._models = models  # float32 copies of this rank's (honest) nodes' models when evaluated
        self._layout = layout  # how many of them each rank hosts
        self._nodes = sum(layout)  # in the whole run
        self._comms = comms
        self._blocking = blocking
        # a rank whose nodes are all attackers adds nothing; ``size``: the model's, for that case
        self._sum = np.zeros(models[0].size if models else size, dtype=np.float64)
        for model in models:
            self._sum += model
        self._distances: np.ndarray | None = None  # every node's ‖x_i − x̄‖², in node order
        self.average: np.ndarray | None = None
        if blocking:
            comms[0].Allreduce(MPI.IN_PLACE, self._sum, op=MPI.SUM)
            self._second_phase()
        else:
            self._request = comms[0].Iallreduce(MPI.IN_PLACE, self._sum, op=MPI.SUM)

    @property
    def consensus_distance(self) -> float:
        """Return (1/n) Σ ‖x_i − x̄‖² (after :meth:`advance` returned True).

        Summed over the gathered per-node distances in node order, so the figure does not
        depend on how the nodes are placed on ranks.
        """
        return float(np.sum(self._distances)) / self._nodes

    def advance(self, wait: bool = False) -> bool:
        """Move the reductions on (to the end when ``wait``); return whether both are complete."""
        while self._request is not None:
            if wait:
                self._request.Wait()
            elif not self._request.Test():
                return False
            if self.average is None:
                self._second_phase()
            else:
                self._request = None
        return True

    def _second_phase(self) -> None:
        self.average = self._sum / self._nodes
        mine = np.array([np.sum((model - self.average) ** 2) for model in self._models], dtype=np.float64)
        comm = self._comms[1]
        blocks = self._layout
        self._distances = np.empty(sum(blocks), dtype=np.float64)
        target = [self._distances, (blocks, np.cumsum([0, *blocks[:-1]]).tolist()), MPI.DOUBLE]
        if self._blocking:
            comm.Allgatherv(mine, target)
            self._request = None
        else:
            self._keep = mine  # a buffer of a pending request must outlive it
            self._request = comm.Iallgatherv(mine, target)


class Evaluator:
    """Evaluate a rank's nodes and the average model; rank 0 records."""

    def __init__(
        self,
        nodes: list[Node],
        comm: MPI.Intracomm,
        placement: Placement,
        vectorize: bool = False,
        attackers: tuple[int, ...] = (),
    ):
        self.nodes = nodes
        # The average model and the consensus distance are the honest nodes' (--attackers are left out).
        self.attackers = frozenset(attackers)
        self._honest = [node for node in nodes if node.id not in self.attackers]
        self.node = nodes[0]  # the first of this rank's nodes: its model evaluates the average
        self.comm = comm
        self.placement = placement
        self.rank = comm.Get_rank()
        self._distance_comm = comm.Dup()  # phase 2 of AverageModel (see there)
        # co-hosted nodes as one computation (--vectorize); --one-by-one keeps the per-node loop,
        # whose metrics are the same to the bit on any placement
        self._vectorized = VectorizedEvaluation() if vectorize and len(nodes) > 1 else None

    @property
    def comms(self) -> tuple[MPI.Intracomm, MPI.Intracomm]:
        return self.comm, self._distance_comm

    def own_values(self) -> np.ndarray:
        """Evaluate each node's own model; return their metrics rows as values, one row per node."""
        if self._vectorized is None:
            rows = []
            for node in self.nodes:
                own = evaluate(node.model, node.test_x, node.test_y)
                rows.append(node.metrics_vector(own.accuracy, own.loss))
            return np.stack(rows)
        scores = zip(self.nodes, self._vectorized.evaluate(self.nodes), strict=True)
        return np.stack([node.metrics_vector(own.accuracy, own.loss) for node, own in scores])

    def average_model(self, models: list[np.ndarray], blocking: bool) -> AverageModel:
        placement = self.placement
        layout = [
            sum(node not in self.attackers for node in placement.nodes_of(rank))
            for rank in range(placement.ranks)
        ]
        return AverageModel(models, layout, self.comms, blocking, size=self.node.flat.numel())

    def scalars(self, reduced: AverageModel) -> dict[str, float]:
        """Return the average model's accuracy and loss and the consensus distance (rank 0 only)."""
        node = self.node
        result = evaluate_parameters(node.model, node.flat, reduced.average, node.test_x, node.test_y)
        return {
            "avg_model_accuracy": result.accuracy,
            "avg_model_loss": result.loss,
            "consensus_distance": reduced.consensus_distance,
        }

    def models(self) -> list[np.ndarray]:
        """Return float32 copies of this rank's honest nodes' models."""
        return [node.flat.detach().cpu().numpy().copy() for node in self._honest]

    def gather_rows(self, values: np.ndarray) -> np.ndarray | None:
        """Gather every rank's rows (``[its nodes, width]``) on rank 0, in node order; None elsewhere."""
        placement, width = self.placement, values.shape[1]
        if self.rank != 0:
            self.comm.Gatherv(np.ascontiguousarray(values), None, root=0)
            return None
        hosted = placement.hosted()  # after a lost rank (--on-failure continue) its nodes are missing
        gathered = np.empty((len(hosted), width), dtype=np.float64)
        counts = [len(placement.nodes_of(r)) * width for r in range(placement.ranks)]
        starts = np.cumsum([0, *counts[:-1]]).tolist()
        self.comm.Gatherv(np.ascontiguousarray(values), [gathered, (counts, starts), MPI.DOUBLE], root=0)
        if len(hosted) == placement.nodes:
            return gathered
        rows = np.full((placement.nodes, width), np.nan)  # a lost node has no values after its loss
        rows[hosted] = gathered
        return rows

    def evaluate(
        self, round_index: int, wall: float, writer: MetricsWriter | None
    ) -> dict[str, float] | None:
        """Evaluate everything now (all ranks); rank 0 appends the row and returns what progress shows."""
        values = self.own_values()
        reduced = self.average_model(self.models(), blocking=True)
        gathered = self.gather_rows(values)
        if self.rank != 0:
            return None
        scalars = self.scalars(reduced)
        names = self.node.metric_names
        per_node = {name: gathered[:, i] for i, name in enumerate(names)}
        writer.append(round_index, wall, per_node, scalars)
        honest = [node not in self.attackers for node in range(len(per_node["test_accuracy"]))]
        return {
            "mean_accuracy": float(np.nanmean(per_node["test_accuracy"][honest])),  # NaN: lost nodes
            "avg_model_accuracy": scalars["avg_model_accuracy"],
            "mb_sent": float(np.nansum(per_node["bytes_sent"])) / 1e6,
        }

    def free(self) -> None:
        self._distance_comm.Free()


class Evaluations:
    """An asynchronous run's evaluations on this rank: its nodes' rows, the reductions, rank 0's averages.

    Each evaluation is one row per node of the rank, ``[interaction, wall time, values…]``;
    :meth:`finish` gathers every rank's rows on rank 0, which writes one column per node.
    With each evaluation the totals progress shows (the honest nodes' accuracies, every
    node's bytes sent) are reduced without blocking too, and once complete rank 0 hands
    them to ``shown(interaction, figures)``, as a synchronous round hands its own.
    """

    def __init__(self, evaluator: Evaluator, shown: Callable[[int, dict[str, float]], None] | None = None):
        self.evaluator = evaluator
        self.shown = shown
        self.names = evaluator.node.metric_names
        self.hosted = len(evaluator.nodes)  # this rank's nodes: the rows of each evaluation
        self.width = 2 + len(self.names)
        self.rows: list[np.ndarray] = []  # per evaluation: [its nodes, width]
        self.scalars: dict[int, dict[str, float]] = {}  # rank 0: average model per evaluation
        self._pending: list[tuple[int, AverageModel, _Totals | None]] = []  # None: nothing shown

    def take(self, interaction: int, wall: float) -> None:
        """Evaluate the rank's nodes where they stand and post the reductions of the average model."""
        values = self.evaluator.own_values()  # [its nodes, metrics]
        at = np.broadcast_to(np.array([interaction, wall], dtype=np.float64), (values.shape[0], 2))
        self.rows.append(np.concatenate([at, values], axis=1))
        models = self.evaluator.models()
        reduced = self.evaluator.average_model(models, blocking=False)
        # posted after the average's first phase on the same communicator, in the same order everywhere
        totals = _Totals(self.evaluator, values) if self.shown is not None else None
        self._pending.append((len(self.rows) - 1, reduced, totals))

    def progress(self) -> None:
        """Handle the reductions that have completed, in order; never waits."""
        while self._pending and self._pending[0][1].advance() and _done(self._pending[0][2]):
            self._complete(*self._pending.pop(0))

    def settle(self) -> None:
        """Wait for every pending reduction (they complete once every rank has posted them)."""
        for index, reduced, totals in self._pending:
            reduced.advance(wait=True)
            _done(totals, wait=True)
            self._complete(index, reduced, totals)
        self._pending = []

    def state_dict(self) -> dict[str, Any]:
        """Return the evaluations taken so far (after :meth:`settle`): own rows, rank 0's averages."""
        if self._pending:
            raise RuntimeError("evaluations still being reduced; call settle first")
        rows = self._table()
        scalars = [[index, s["avg_model_accuracy"], s["avg_model_loss"], s["consensus_distance"]]
                   for index, s in sorted(self.scalars.items())]  # fmt: skip
        return {"rows": rows, "scalars": np.array(scalars, dtype=np.float64).reshape(len(scalars), 4)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`.

        A checkpoint written while a rank hosted one node holds ``[evaluations, width]`` rows.
        """
        rows = np.asarray(state["rows"], dtype=np.float64)
        if rows.ndim == 2 and self.hosted == 1:
            rows = rows[:, None, :]
        if rows.ndim != 3 or rows.shape[1:] != (self.hosted, self.width):
            raise ValueError(
                f"saved evaluations have shape {rows.shape}, expected [n, {self.hosted}, {self.width}]"
            )
        self.rows = list(rows)
        self.scalars = {
            int(index): {"avg_model_accuracy": acc, "avg_model_loss": loss, "consensus_distance": distance}
            for index, acc, loss, distance in np.asarray(state["scalars"], dtype=np.float64).tolist()
        }

    def finish(self, writer: MetricsWriter | None) -> None:
        """Gather every rank's rows on rank 0, which writes one row per evaluation, a column per node.

        Each row's wall time is that of the slowest rank to reach it.
        """
        self.settle()
        evaluator = self.evaluator
        comm, placement = evaluator.comm, evaluator.placement
        rows = self._table()  # every rank took as many evaluations: the same cadence
        if comm.Get_rank() != 0:
            comm.Gatherv(rows, None, root=0)
            return
        blocks = [len(placement.nodes_of(rank)) for rank in range(placement.ranks)]
        counts = [len(self.rows) * block * self.width for block in blocks]
        gathered = np.empty(sum(counts), dtype=np.float64)
        comm.Gatherv(rows, [gathered, (counts, np.cumsum([0, *counts[:-1]]).tolist()), MPI.DOUBLE], root=0)
        # each rank's block is [evaluations, its nodes, width]; side by side they are in node order
        starts = np.cumsum([0, *counts])
        table = np.concatenate(
            [
                gathered[start:stop].reshape(len(self.rows), block, self.width)
                for start, stop, block in zip(starts[:-1], starts[1:], blocks, strict=True)
            ],
            axis=1,
        )
        if writer is None:
            return
        for index, at in enumerate(table):
            per_node = {name: at[:, 2 + i] for i, name in enumerate(self.names)}
            writer.append(int(at[0, 0]), float(at[:, 1].max()), per_node, self.scalars[index])

    def _table(self) -> np.ndarray:
        """Return the rows taken so far as one contiguous ``[evaluations, its nodes, width]`` array."""
        return np.ascontiguousarray(
            np.array(self.rows, dtype=np.float64).reshape(len(self.rows), self.hosted, self.width)
        )

    def _complete(self, index: int, reduced: AverageModel, totals: _Totals | None) -> None:
        if self.evaluator.rank != 0:
            return
        scalars = self.scalars[index] = self.evaluator.scalars(reduced)
        if totals is not None:
            figures = {**totals.figures(), "avg_model_accuracy": scalars["avg_model_accuracy"]}
            self.shown(int(self.rows[index][0, 0]), figures)


def _done(totals: _Totals | None, wait: bool = False) -> bool:
    return totals is None or totals.done(wait)


class _Totals:
    """What progress shows of one asynchronous evaluation, summed over ranks without blocking.

    The same figures as a synchronous round's (:meth:`Evaluator.evaluate`): the mean
    accuracy of the honest nodes' own models and the megabytes every node sent.
    """

    def __init__(self, evaluator: Evaluator, values: np.ndarray):
        names = evaluator.node.metric_names
        accuracy, sent = values[:, names.index("test_accuracy")], values[:, names.index("bytes_sent")]
        honest = np.array([node.id not in evaluator.attackers for node in evaluator.nodes])
        # [sum of honest accuracies, honest nodes, bytes sent]; kept alive while the request is pending
        self._sums = np.array([accuracy[honest].sum(), honest.sum(), sent.sum()], dtype=np.float64)
        self._request: MPI.Request | None = evaluator.comm.Iallreduce(MPI.IN_PLACE, self._sums, op=MPI.SUM)

    def done(self, wait: bool = False) -> bool:
        """Return whether the sums are complete (waiting for them when ``wait``)."""
        if self._request is not None:
            if wait:
                self._request.Wait()
            elif not self._request.Test():
                return False
            self._request = None
        return True

    def figures(self) -> dict[str, float]:
        accuracy_sum, honest, sent = self._sums.tolist()
        return {"mean_accuracy": accuracy_sum / max(honest, 1.0), "mb_sent": sent / 1e6}
