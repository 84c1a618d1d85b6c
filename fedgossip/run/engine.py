"""The engine: one run's lifecycle on every rank — plan, node, records, a schedule, the final status.

``run_training`` plans the run (every spec and plugin resolved, alike on every
rank), reads this rank's shard, builds its nodes, and only then opens the run
directory (or reopens it to resume), then hands the node to one schedule: rounds
(:mod:`fedgossip.run.rounds`) or, with ``--async``, interactions
(:mod:`fedgossip.run.interactions`). Both share the evaluator, the privacy gate
and the cadence of evaluations, checkpoints and preemption (:class:`RunContext`).
A failure is recorded in run.json before it propagates.
"""

from __future__ import annotations

import gc
import logging
import os
import resource
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from mpi4py import MPI

from fedgossip.comm.collective import agree, is_collective
from fedgossip.comm.network import NodeNetwork
from fedgossip.comm.ulfm import report_failures
from fedgossip.errors import DataError
from fedgossip.local.device import node_local_rank, select_device
from fedgossip.local.trainer import TrainingDiverged
from fedgossip.records import CHECKPOINTS, MetricsWriter, summarize, update_run_status, write_summary
from fedgossip.records.checkpoint import CheckpointInfo, check_writable, read_rank_checkpoint
from fedgossip.run.assemble import build_nodes
from fedgossip.run.cadence import Cadence
from fedgossip.run.checkpointing import checkpoint_bytes, restore_rank
from fedgossip.run.context import RunContext
from fedgossip.run.edge_traffic import gather_edges
from fedgossip.run.evaluator import Evaluator
from fedgossip.run.interactions import run_interactions
from fedgossip.run.local_data import load_local_data, sample_counts, warm_up_compressor
from fedgossip.run.plan import plan_run
from fedgossip.run.preemption import Preemption
from fedgossip.run.progress import RoundInfo
from fedgossip.run.records import reopen_records, start_records
from fedgossip.run.recoverable_interactions import run_recoverable_interactions
from fedgossip.run.recovery import Recovery
from fedgossip.run.rounds import run_rounds
from fedgossip.run.stall import watch_for_stalls
from fedgossip.run.vectorized import VectorizedRounds
from fedgossip.settings.config import TrainConfig

__all__ = ["RoundInfo", "run_training"]


def run_training(
    config: TrainConfig,
    comm: MPI.Intracomm,
    on_round: Callable[[RoundInfo], None] | None = None,
    resume: Path | None = None,
    preemption: Preemption | None = None,
    on_resume: Callable[[int], None] | None = None,
) -> dict | None:
    """Train as configured on every rank of ``comm``; return the summary on rank 0 (None elsewhere).

    ``resume`` is a run directory to continue from its last complete checkpoint
    (``config`` must be the one it was started with). ``preemption`` is polled at
    every round boundary: once any rank was asked to stop (SIGTERM), every rank
    writes a checkpoint and the run ends with status ``preempted``. ``on_resume`` is
    called on rank 0 with the round of the checkpoint a resumed run continues after.
    """
    rank = comm.Get_rank()
    plan = plan_run(config, comm)
    warm_up_compressor(plan.compressor, comm)
    shards, test = load_local_data(plan, comm)
    local_rank = node_local_rank(comm)
    _share_cores(comm)
    device = agree(comm, lambda: select_device(config.device, local_rank))
    counts = sample_counts(shards, plan, comm)
    network = NodeNetwork(comm, plan.placement, plan.network_max_packet, plan.link)
    # Before the run directory exists, so that what only a node can check (allreduce refusing a lossy
    # compressor, a model the data does not fit) leaves no "failed" run behind. Building a node involves
    # no communication, so agree() cannot leave a rank waiting.
    nodes = agree(comm, lambda: build_nodes(plan, shards, test, device, network, counts))
    checkpoint = None  # the checkpoint resumed from, as plain data
    if resume is None:
        run_dir, guardian = start_records(plan, comm, counts)
    else:
        run_dir, checkpoint, guardian = reopen_records(Path(resume), plan, comm)
        if on_resume is not None and rank == 0:
            on_resume(checkpoint["round"])
    step = 0 if checkpoint is None else checkpoint["round"]  # the round resumed after
    ctx = None

    def current() -> int:
        """Return the round (interaction) under way, for the failure's record."""
        return step if ctx is None else ctx.step

    try:
        # What start-up made lives as long as the run: keep the collector from scanning it ever after.
        gc.freeze()
        gc.enable()
        if config.checkpoint_every or not config.asynchronous:
            # before the first round, not at the first checkpoint an hour later; on a shared file
            # system every rank's files land together, two rounds' worth while one replaces the other.
            # Without --checkpoint-every only a SIGTERM writes one: the directory must be writable,
            # but a run that never asked for checkpoints is not refused for their size.
            need = 2 * comm.Get_size() * checkpoint_bytes(nodes) if config.checkpoint_every else 0
            agree(comm, lambda: check_writable(run_dir / CHECKPOINTS, need))
        writer = MetricsWriter(run_dir, plan.nodes) if rank == 0 else None
        ctx = RunContext(
            plan=plan,
            nodes=nodes,
            network=network,
            comm=comm,
            run_dir=run_dir,
            writer=writer,
            evaluator=Evaluator(nodes, comm, plan.placement, config.vectorize, plan.attackers),
            cadence=Cadence(config.rounds, config.eval_every, config.checkpoint_every),
            preemption=preemption,
            on_round=on_round,
            step=step,
            batched=VectorizedRounds() if config.vectorize and len(nodes) > 1 else None,
            guardian=guardian,
            recovery=_recovery(config, comm),
        )
        resumed_schedule = None  # what the asynchronous schedule saved in the checkpoint resumed from
        if checkpoint is None:
            for node in nodes:
                node.start_plugins()
        else:
            state = agree(comm, lambda: read_rank_checkpoint(run_dir, CheckpointInfo(**checkpoint), rank))
            agree(comm, lambda: restore_rank(nodes, comm, state))
            resumed_schedule = state.get("loop")
            agree(comm, lambda: _truncate_metrics(writer, checkpoint["evaluations"]), root_only=True)
            ctx.started -= checkpoint["wall_s"]  # wall time runs on from where the checkpoint left it
        unit = "interaction" if config.asynchronous else "round"
        ctx.heartbeat = watch_for_stalls(comm, run_dir, config.stall_timeout, unit)
        try:
            if config.asynchronous and ctx.recovery is not None:
                outcome = run_recoverable_interactions(ctx)
            elif config.asynchronous:
                outcome = run_interactions(ctx, resumed_schedule)
            else:
                outcome = run_rounds(ctx, step + 1)
            comm, network = ctx.comm, ctx.network  # the survivors', if ranks were lost
            edges = gather_edges(nodes, comm)
            if writer is not None and writer.evals:
                writer.write_edges(edges)
        except BaseException:
            ctx.heartbeat.abandon()  # the run failed: no collective stop, the job is ending
            raise
        ctx.heartbeat.stop()
        ctx.evaluator.free()
        network.free()
    except KeyboardInterrupt:
        # The signal may reach only some ranks (the others wait inside MPI), so each one records it.
        _record_failure(run_dir, rank, "interrupted", current(), everywhere=False)
        raise
    except TrainingDiverged as exc:
        exc.args = (f"{exc} (round {current()} on rank {rank})",)
        _record_failure(run_dir, rank, str(exc), current(), everywhere=False)
        raise
    except MPI.Exception as exc:
        # Typically a peer died (killed, out of memory): say so before MPI's error stack.
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        message = f"MPI communication failed in round {current()} on rank {rank} (did a rank die?): {detail}"
        _record_failure(run_dir, rank, message, current(), everywhere=False)
        raise
    except BaseException as exc:
        error = str(exc) or type(exc).__name__
        _record_failure(run_dir, rank, error, current(), everywhere=is_collective(exc))
        raise
    if ctx.recovery is not None and ctx.recovery.lost:
        outcome.details["lost"] = ctx.recovery.lost
    if preemption is not None and outcome.stopped_at is not None:
        preemption.stopped_at = outcome.stopped_at
    peak_rss = _peak_rss_mb(comm)
    if rank != 0:
        return None
    update_run_status(run_dir, outcome.status, peak_rss_mb=peak_rss, **outcome.details)
    summary = summarize(run_dir)
    write_summary(run_dir, summary)
    return {**summary, "run_dir": str(run_dir)}


def _recovery(config: TrainConfig, comm: MPI.Intracomm) -> Recovery | None:
    """Return what lets the survivors go on after a lost rank (--on-failure continue); None: abort."""
    if config.on_failure != "continue":
        return None
    report_failures(comm)
    return Recovery(comm)


def _truncate_metrics(writer: MetricsWriter | None, evaluations: int) -> None:
    """Drop the metrics rows written after the checkpoint resumed from: the resumed run writes them again."""
    if writer is None:
        return
    if writer.evals < evaluations:
        raise DataError(
            f"{writer.path} holds {writer.evals} evaluations but the checkpoint counts {evaluations} "
            "(the file lost rows in a crash); the run cannot resume with its records whole: start a new run"
        )
    writer.truncate(evaluations)


def _peak_rss_mb(comm: MPI.Intracomm) -> list[float] | None:
    """Return every rank's peak resident memory in MB on rank 0 (``ru_maxrss``), None elsewhere."""
    # Linux reports kilobytes, macOS bytes.
    scale = 1e-6 if sys.platform == "darwin" else 1e-3
    mine = np.array([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale], dtype=np.float64)
    every = np.empty(comm.Get_size(), dtype=np.float64) if comm.Get_rank() == 0 else None
    comm.Gather(mine, every, root=0)
    return None if every is None else [round(float(mb), 1) for mb in every]


def _record_failure(run_dir: Path, rank: int, error: str, step: int, everywhere: bool) -> None:
    """Mark the run failed in run.json, from rank 0 or, for a failure of one rank, from that rank.

    A failing rank other than 0 is about to abort the job, rank 0 included, so
    it writes the record itself where it can see the run directory (a shared
    file system). Recording must never hide the error being reported.
    """
    if rank != 0 and (everywhere or not run_dir.is_dir()):
        return
    try:
        update_run_status(run_dir, "failed", error=error, failed_round=step)
    except Exception as exc:  # the original error matters more than its record
        logging.getLogger(__name__).warning(
            "[rank %d] could not record the failure in %s: %s", rank, run_dir, exc
        )


def _share_cores(comm: MPI.Intracomm) -> None:
    """Give each rank an equal share of its host's cores, so oversubscribed ranks don't thrash.

    An OMP_NUM_THREADS set by the user wins: the thread count changes how a matrix
    product splits its sums, and runs meant to agree to the bit must use the same.
    """
    host = comm.Split_type(MPI.COMM_TYPE_SHARED)
    ranks_here = host.Get_size()
    host.Free()
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        return  # torch read it at import
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // ranks_here))
