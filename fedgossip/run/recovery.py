"""Training on after a rank died (``--on-failure continue``): roll back the round, go on without it.

Under ULFM (:mod:`fedgossip.comm.ulfm`) a call involving a dead rank raises on a survivor
instead of ending the job. The schedule hands the error to :meth:`Recovery.recover` on every
survivor (each one learns of the loss, from a peer's silence or from another's revoke):

1. revoke every communicator of the run, so a survivor still waiting on a live peer is
   released, and shrink the run's communicator to the survivors (all get the same one);
2. agree on the round to run again: the earliest round a survivor was in. Every round
   ends with a barrier (:meth:`Recovery.end_round`), so survivors are at most one round
   apart, and each keeps its nodes' states at the start of its current and previous round;
3. drop the lost nodes: the graph is bridged over them (:mod:`fedgossip.topology.repair`)
   and every surviving node's algorithm is set up afresh on it, so nothing that involved a
   lost node remains (references, public copies, residuals). The network, the evaluator and
   the heartbeat are rebuilt on the survivors' communicator;
4. restore every surviving node to the start of that round; compressed gossip sends its model
   uncompressed to its neighbours once, so the copies on both ends of every edge start from
   the exact models (:meth:`Algorithm.catch_up`); and run the round again.

Rank 0 writes the run's records, so its loss ends the run (its guardian marks it failed).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from mpi4py import MPI

from fedgossip.algorithms.catch_up import exact_packet_bytes
from fedgossip.comm.collective import barrier_sleeping
from fedgossip.comm.network import NodeNetwork
from fedgossip.comm.surviving_placement import SurvivingPlacement
from fedgossip.comm.ulfm import abandon, is_rank_lost, revoke_quietly, shrink_to_survivors
from fedgossip.errors import FedGossipError
from fedgossip.run.context import RunContext
from fedgossip.run.evaluator import Evaluator
from fedgossip.run.stall import watch_for_stalls
from fedgossip.topology.repair import bridge_lost_nodes

__all__ = ["Recovery", "RecordsLost"]


class RecordsLost(FedGossipError):
    """Rank 0, which writes the run's records, died: the survivors cannot go on."""


class Recovery:
    """One rank's side of surviving lost ranks: round snapshots, and rebuilding on the survivors."""

    def __init__(self, comm: MPI.Intracomm):
        self._launched = comm.Get_group()  # the ranks as the job started: what run.json names
        self.lost: list[dict[str, Any]] = []  # run.json's ``lost``: node, rank, round, wall_s, recovery_s
        self._starts: dict[int, tuple[list[dict[str, Any]], int]] = {}  # round -> node states, evaluations

    def begin_round(self, ctx: RunContext, round_index: int) -> None:
        """Keep this rank's nodes' states at the start of ``round_index`` (and of the round before)."""
        states = [_kept(node.state_dict()) for node in ctx.nodes]
        evaluations = ctx.writer.evals if ctx.writer is not None else 0
        self._starts[round_index] = (states, evaluations)
        for kept in sorted(self._starts)[:-2]:  # the current round's and the one before (a window's)
            del self._starts[kept]

    @staticmethod
    def end_round(comm: MPI.Intracomm) -> None:
        """Wait until every rank finished the round: no survivor is ever more than one round ahead."""
        barrier_sleeping(comm)

    def go_on(
        self, ctx: RunContext, round_index: int, error: MPI.Exception, then: Callable[[], None] | None = None
    ) -> int:
        """Recover from ``error`` (and from ranks lost meanwhile, and in ``then``); return the round to rerun.

        ``then`` is what the schedule needs done collectively on the survivors before it goes on
        (the asynchronous transport's opening).
        """
        detected = time.perf_counter()
        while True:
            try:
                restart = self.recover(ctx, round_index, detected, error)
                if then is not None:
                    then()
                return restart
            except MPI.Exception as exc:
                if exc is error or not is_rank_lost(exc):
                    raise
                error = exc

    def recover(self, ctx: RunContext, round_index: int, detected: float, error: MPI.Exception) -> int:
        """Go on without the dead ranks (collective over the survivors); return the round to run again.

        ``detected``: when this rank saw ``error``, the failure (``time.perf_counter``).
        """
        for comm in _communicators(ctx):
            revoke_quietly(comm)
        if ctx.heartbeat is not None:
            ctx.heartbeat.abandon()
        survivors = shrink_to_survivors(ctx.comm)
        restart = np.array([round_index], dtype=np.int64)
        survivors.comm.Allreduce(MPI.IN_PLACE, restart, op=MPI.MIN)
        restart_round = int(restart[0])
        if not survivors.lost:  # every rank is alive: the error was something else, and is the run's end
            raise error
        if 0 in survivors.lost:
            raise RecordsLost(
                f"rank 0 was lost in round {restart_round}: it writes the run's records (and hosts "
                "fedavg's server), so the run cannot go on; start rank 0 where it is least likely to fail"
            )
        if restart_round not in self._starts:
            raise RuntimeError(f"no state kept for round {restart_round} (rounds {sorted(self._starts)})")
        old_placement = ctx.network.placement
        launched = MPI.Group.Translate_ranks(ctx.comm.Get_group(), list(survivors.lost), self._launched)
        lost = [  # (node, its rank as the job was launched), for every node of every lost rank
            (node, launched_rank)
            for rank, launched_rank in zip(survivors.lost, launched, strict=True)
            for node in old_placement.nodes_of(rank)
        ]
        kept = [old for old in range(ctx.comm.Get_size()) if old in survivors.rank_of]
        placement = SurvivingPlacement(old_placement, kept)
        topology = bridge_lost_nodes(ctx.nodes[0].algorithm.ctx.topology, [node for node, _ in lost])
        # the exact models of the catch-up are larger than a compressed packet
        max_bytes = max(ctx.network.max_bytes, exact_packet_bytes(ctx.nodes[0].params.numel))
        network = NodeNetwork(survivors.comm, placement, max_bytes, ctx.network.link)
        states, evaluations = self._starts[restart_round]
        shared: dict = {}  # what the rank's new algorithms share, as build_nodes gives them
        for node, state in zip(ctx.nodes, states, strict=True):
            node.load_state_dict(state)
            _set_up_afresh(ctx, node, topology, network, survivors.comm, shared)
        ctx.evaluator = Evaluator(
            ctx.nodes, survivors.comm, placement, ctx.plan.config.vectorize, ctx.plan.attackers
        )
        ctx.network, ctx.comm = network, survivors.comm
        if ctx.writer is not None:
            ctx.writer.truncate(evaluations)  # the rounds run again write their rows again
        config = ctx.plan.config
        unit = "interaction" if config.asynchronous else "round"
        ctx.heartbeat = watch_for_stalls(survivors.comm, ctx.run_dir, config.stall_timeout, unit)
        wall = ctx.wall()
        recovery_s = time.perf_counter() - detected
        for node, rank in lost:
            self.lost.append(
                {
                    "node": node,
                    "rank": rank,
                    "round": restart_round,
                    "wall_s": round(wall, 3),
                    "recovery_s": round(recovery_s, 4),
                }
            )
        self._starts = {r: s for r, s in self._starts.items() if r == restart_round}
        # Last, once the run stands on the survivors: a rank lost during this exchange is recovered
        # from like any other (the schedule calls recover again, from this restart round).
        catching_up = _gossip_catch_up if config.asynchronous else _algorithm_catch_up
        ctx.network.converse({node.id: catching_up(node) for node in ctx.nodes})
        return restart_round


# Node.state_dict parts that are fresh copies already (cloned tensors, new dicts): copying them again
# would copy every model and every public copy twice a round. The rest (the optimizer's state, the
# data stream's) holds references to live tensors, which the round's steps change in place.
_FRESH = ("model", "algorithm", "gossip")


def _kept(state: dict[str, Any]) -> dict[str, Any]:
    """Return ``state`` (a Node.state_dict) safe to keep while the node trains on."""
    return {key: value if key in _FRESH else copy.deepcopy(value) for key, value in state.items()}


def _algorithm_catch_up(node):
    """Return the conversation that re-syncs what the node's algorithm keeps of its neighbours."""
    return node.algorithm.catch_up(node.flat)


def _gossip_catch_up(node):
    """Return the conversation that re-syncs what the node's asynchronous gossip keeps (--async)."""
    return node.gossip.catch_up(node.flat)


def _communicators(ctx: RunContext) -> list[MPI.Intracomm]:
    """Return every communicator the run's ranks talk on, the run's own last (it is shrunk)."""
    found = [ctx.network.comm, ctx.evaluator.comms[1]]
    if ctx.heartbeat is not None:
        found.append(ctx.heartbeat.comm)
    if ctx.nodes[0].gossip is not None:  # --async: the transport the rank's nodes share
        found.append(ctx.nodes[0].gossip.transport.opened)
    return [comm for comm in found if comm is not None] + [ctx.comm]


def _set_up_afresh(ctx: RunContext, node, topology, network: NodeNetwork, comm, shared: dict) -> None:
    """Give ``node`` a new algorithm on the repaired graph and the survivors' network, its state reset.

    ``same_start=False``: the models differ by now, so references and public copies start at
    zero, alike at both ends of an edge, until :meth:`Algorithm.catch_up` sets them exactly.
    """
    context = dataclasses.replace(
        node.algorithm.ctx, comm=comm, topology=topology, network=network, shared=shared, same_start=False
    )
    algorithm = copy.copy(ctx.plan.algorithm)
    algorithm.setup(context, node.flat)
    node.algorithm = algorithm
    if node.trainer is not None:
        node.trainer.correction = algorithm.correction
    if node.gossip is not None:  # --async: its gossip too, on a new transport; its draws and counters go on
        old = node.gossip
        abandon(old.transport)  # sends still held by MPI must outlive the old transport
        node.gossip = algorithm.start_async(node.flat, old.rng)
        node.gossip.steps, node.gossip.stats = old.steps, old.stats
