"""The round loop of a run: local steps, the algorithm's exchange, periodic evaluation and records."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mpi4py import MPI

from fedgossip.algorithms.base import GossipContext
from fedgossip.comm.codec import Codec
from fedgossip.comm.collective import agree, is_collective
from fedgossip.comm.traffic import Traffic
from fedgossip.data.shards import ShardData
from fedgossip.errors import ConfigError, DataError
from fedgossip.local.batches import BatchStream
from fedgossip.local.device import node_local_rank, select_device
from fedgossip.local.evaluate import evaluate, evaluate_parameters
from fedgossip.local.flat import FlatParameters
from fedgossip.local.models.base import build_model
from fedgossip.local.optim import make_lr_schedule, make_optimizer
from fedgossip.local.slowdown import StepStretcher
from fedgossip.local.trainer import LocalTrainer, TrainingDiverged
from fedgossip.plugins.base import PluginHost
from fedgossip.privacy.node import NodePrivacy
from fedgossip.records import CHECKPOINTS, MetricsWriter, summarize, update_run_status, write_summary
from fedgossip.records.checkpoint import CheckpointInfo, check_writable, read_rank_checkpoint
from fedgossip.run.checkpointing import checkpoint_bytes, restore_rank, write_checkpoint
from fedgossip.run.interactions import run_async
from fedgossip.run.plan import (
    RunPlan,
    load_local_data,
    plan_run,
    reopen_records,
    sample_counts,
    start_records,
    warm_up_compressor,
)
from fedgossip.run.preemption import Preemption
from fedgossip.settings.config import TrainConfig
from fedgossip.settings.link_spec import parse_link
from fedgossip.settings.local_steps import parse_local_steps
from fedgossip.settings.optimizer_spec import parse_optimizer
from fedgossip.settings.slowdown_spec import parse_slowdown

__all__ = ["RoundInfo", "run_training"]

# Streams of the generators seeded by (run seed, rank), kept apart from the codec's (3).
_LOCAL_STEPS_STREAM, _PARTNER_STREAM = 5, 6

# Per-rank values gathered at every evaluation, in this order.
_PER_RANK = (
    "test_accuracy",
    "test_loss",
    "train_loss",
    "bytes_sent",
    "bytes_received",
    "fp32_bytes_sent",
    "data_bytes_sent",  # samples shared by --share-data, counted apart from the model's bytes
    "data_bytes_received",
    "samples_processed",  # samples the local steps trained on, cumulative
    "compute_s",
    "comm_s",
    "codec_s",
    "link_s",
    # asynchronous gossip only (NaN otherwise)
    "interactions",
    "offers_served",
    "staleness_steps",
    "idle_s",
    # private training only (NaN otherwise)
    "epsilon",
    "dp_delta",
    "dp_stopped",  # 1 where the budget stopped the node's training
)


@dataclass
class RoundInfo:
    """What rank 0 tells the progress display after each round."""

    round: int
    rounds: int
    mean_accuracy: float | None = None
    avg_model_accuracy: float | None = None
    mb_sent: float = 0.0
    run_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def run_training(
    config: TrainConfig,
    comm: MPI.Intracomm,
    on_round: Callable[[RoundInfo], None] | None = None,
    resume: Path | None = None,
    preemption: Preemption | None = None,
) -> dict | None:
    """Train as configured on every rank of ``comm``; return the summary on rank 0 (None elsewhere).

    ``resume`` is a run directory to continue from its last complete checkpoint
    (``config`` must be the one it was started with). ``preemption`` is polled at
    every round boundary: once any rank was asked to stop (SIGTERM), every rank
    writes a checkpoint and the run ends with status ``preempted``.
    """
    rank = comm.Get_rank()
    plan = plan_run(config, comm)
    warm_up_compressor(plan.compressor, comm)
    shard, test = load_local_data(plan, comm)
    local_rank = node_local_rank(comm)
    _share_cores(comm)
    device = agree(comm, lambda: select_device(config.device, local_rank))
    counts = sample_counts(shard, comm)
    checkpoint = None  # the checkpoint resumed from, as plain data
    if resume is None:
        run_dir = start_records(config, plan, comm)
    else:
        run_dir, checkpoint = reopen_records(Path(resume), plan, comm)
    round_index = 0 if checkpoint is None else checkpoint["round"]
    try:
        # Building a rank's state involves no communication, so agree() cannot leave a rank waiting.
        node = agree(comm, lambda: _RankState(config, plan, shard, test, device, comm, counts))
        if config.checkpoint_every or not config.asynchronous:
            # before the first round, not at the first checkpoint an hour later; on a shared file
            # system every rank's files land together, two rounds' worth while one replaces the other.
            # Without --checkpoint-every only a SIGTERM writes one: the directory must be writable,
            # but a run that never asked for checkpoints is not refused for their size.
            need = 2 * comm.Get_size() * checkpoint_bytes(node) if config.checkpoint_every else 0
            agree(comm, lambda: check_writable(run_dir / CHECKPOINTS, need))
        writer = MetricsWriter(run_dir, comm.Get_size()) if rank == 0 else None
        started = time.perf_counter()
        preempted = None  # the round (interaction) after which a SIGTERM stopped the run
        resumed_loop = None  # what the asynchronous loop saved in the checkpoint resumed from
        if checkpoint is None:
            node.start_plugins(plan)
        else:
            state = agree(comm, lambda: read_rank_checkpoint(run_dir, CheckpointInfo(**checkpoint), rank))
            agree(comm, lambda: restore_rank(node, state, plan))
            resumed_loop = state.get("loop")
            agree(comm, lambda: _truncate_metrics(writer, checkpoint["evaluations"]), root_only=True)
            started -= checkpoint["wall_s"]  # wall time runs on from where the checkpoint left it
        if config.asynchronous:
            progress = partial(RoundInfo, rounds=config.rounds, run_dir=run_dir)
            preempted = run_async(
                node, writer, progress, on_round, node.metric_names, run_dir, resumed_loop, preemption
            )
            if preempted is not None:
                preemption.stopped_at = preempted
        synchronous_rounds = 0 if config.asynchronous else config.rounds
        budget = None  # the synchronous round a privacy budget stopped, and the ranks it stopped
        first_round = round_index + 1  # 1, or the round after the checkpoint resumed from
        for round_index in range(first_round, synchronous_rounds + 1):
            steps = node.steps_in(round_index)
            over = _over_budget(node, steps)
            if over:
                if node.privacy is not None and rank in over:
                    node.privacy.stopped = True
                budget = {"round": round_index - 1, "ranks": over, "target_epsilon": config.dp_target_epsilon}
                if (round_index - 1) % config.eval_every:  # the last round done is not evaluated yet
                    info = RoundInfo(round_index - 1, config.rounds, run_dir=run_dir)
                    _evaluate(node, round_index - 1, time.perf_counter() - started, writer, info)
                break
            node.round(round_index, steps)
            info = RoundInfo(round_index, config.rounds, run_dir=run_dir)
            if round_index % config.eval_every == 0 or round_index == config.rounds:
                _evaluate(node, round_index, time.perf_counter() - started, writer, info)
            if on_round and rank == 0:
                on_round(info)
            last = round_index == config.rounds
            stop = preemption is not None and not last and preemption.agreed(comm)
            due = config.checkpoint_every and round_index % config.checkpoint_every == 0 and not last
            if stop or due:
                write_checkpoint(node, run_dir, round_index, writer, time.perf_counter() - started)
            if stop:
                preempted = preemption.stopped_at = round_index
                break
    except KeyboardInterrupt:
        # The signal may reach only some ranks (the others wait inside MPI), so each one records it.
        _record_failure(run_dir, rank, "interrupted", round_index, everywhere=False)
        raise
    except TrainingDiverged as exc:
        exc.args = (f"{exc} (round {round_index} on rank {rank})",)
        _record_failure(run_dir, rank, str(exc), round_index, everywhere=False)
        raise
    except MPI.Exception as exc:
        # Typically a peer died (killed, out of memory): say so before MPI's error stack.
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        message = (
            f"MPI communication failed in round {round_index} on rank {rank} (did a rank die?): {detail}"
        )
        _record_failure(run_dir, rank, message, round_index, everywhere=False)
        raise
    except BaseException as exc:
        _record_failure(
            run_dir, rank, str(exc) or type(exc).__name__, round_index, everywhere=is_collective(exc)
        )
        raise
    if rank != 0:
        return None
    if budget is not None:
        update_run_status(run_dir, "budget-exhausted", budget=budget)
    elif preempted is not None:
        update_run_status(run_dir, "preempted", preempted_round=preempted)
    else:
        update_run_status(run_dir, "completed")
    summary = summarize(run_dir)
    write_summary(run_dir, summary)
    return {**summary, "run_dir": str(run_dir)}


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


def _over_budget(node: _RankState, steps: int) -> list[int]:
    """Return the ranks whose ε would pass --dp-target-epsilon in a round of ``steps`` (all ranks ask)."""
    if node.config.dp_target_epsilon is None:
        return []
    mine = np.array([node.privacy is not None and node.privacy.would_exceed(steps)], dtype=np.int8)
    flags = np.empty(node.comm.Get_size(), dtype=np.int8)
    node.comm.Allgather(mine, flags)
    return [int(r) for r in np.flatnonzero(flags)]


def _record_failure(run_dir: Path, rank: int, error: str, round_index: int, everywhere: bool) -> None:
    """Mark the run failed in run.json, from rank 0 or, for a failure of one rank, from that rank.

    A failing rank other than 0 is about to abort the job, rank 0 included, so
    it writes the record itself where it can see the run directory (a shared
    file system). Recording must never hide the error being reported.
    """
    if rank != 0 and (everywhere or not run_dir.is_dir()):
        return
    try:
        update_run_status(run_dir, "failed", error=error, failed_round=round_index)
    except Exception as exc:  # the original error matters more than its record
        logging.getLogger(__name__).warning(
            "[rank %d] could not record the failure in %s: %s", rank, run_dir, exc
        )


def _share_cores(comm: MPI.Intracomm) -> None:
    """Give each rank an equal share of its host's cores, so oversubscribed ranks don't thrash."""
    host = comm.Split_type(MPI.COMM_TYPE_SHARED)
    ranks_here = host.Get_size()
    host.Free()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // ranks_here))


class _RankState:
    """One rank's model, optimizer, data stream and algorithm state for a run."""

    def __init__(
        self,
        config: TrainConfig,
        plan: RunPlan,
        shard: ShardData | None,
        test: ShardData,
        device,
        comm,
        counts: np.ndarray,
    ):
        self.comm, self.rank, self.config = comm, comm.Get_rank(), config
        manifest = plan.manifest
        # Same seed on every rank: all models start identical, as decentralized SGD assumes.
        self.model = build_model(
            config.model, tuple(manifest.input_shape), len(manifest.classes), config.seed
        )
        self.model.to(device)
        self.params = FlatParameters(self.model)
        self.test_x = torch.from_numpy(test.x).to(device)
        self.test_y = torch.from_numpy(test.y).to(device)
        self.trainer = None
        if shard is not None:
            # Data order must differ across ranks: the rank enters the seed.
            seed = [config.seed, self.rank]
            stream = BatchStream(shard.x, shard.y, config.batch_size, seed=seed, device=device)
            # Fixed or random (geometric) steps per round; rounds of epochs are fixed too.
            self.local_steps = config.steps_per_round or parse_local_steps(
                config.local_epochs * stream.steps_per_epoch
            )
            self.steps_rng = np.random.default_rng([config.seed, self.rank, _LOCAL_STEPS_STREAM])
            factor = parse_slowdown(config.slowdown).factors(comm.Get_size(), config.seed)[self.rank]
            stretcher = StepStretcher(float(factor)) if factor > 1 else None
            # --momentum is SGD's alone (Adam's first-moment decay is the spec's beta1); its default
            # of 0.9 must not reach an adam or amsgrad optimizer, which refuses a momentum.
            momentum = config.momentum if parse_optimizer(config.optimizer)[0] == "sgd" else 0.0
            optimizer = make_optimizer(
                config.optimizer, self.model.parameters(), config.lr, momentum, config.weight_decay
            )
            total_steps = max(1, round(config.rounds * self.local_steps.mean))
            schedule = make_lr_schedule(config.lr_schedule, optimizer, total_steps)
            # COMP-AMS replaces each step's gradient by the mean of all ranks' compressed ones.
            hook = plan.algorithm.reduce_gradient if plan.algorithm.exchanges_gradients else None
            self.trainer = LocalTrainer(
                self.model, self.params, optimizer, schedule, stream, gradient_hook=hook, stretcher=stretcher
            )
        self.traffic = Traffic(comm.Get_size())
        self.codec = Codec(plan.compressor, self.rank, self.params.numel, config.seed)
        self.algorithm = plan.algorithm
        context = GossipContext(
            comm,
            plan.topology,
            self.codec,
            self.traffic,
            config.seed,
            counts,
            config.client_fraction,
            config.gamma,
            link=parse_link(config.link),
        )
        self.algorithm.setup(context, self.params.flat)
        self.privacy = None
        if plan.privacy is not None and self.trainer is not None:
            self.privacy = self._private(plan.privacy, stream, device)
        self.gossip = None  # the asynchronous engine, when --async
        if config.asynchronous:
            rng = np.random.default_rng([config.seed, self.rank, _PARTNER_STREAM])
            self.gossip = self.algorithm.start_async(self.params.flat, rng)
        self.compute_s = 0.0
        self.loss_sum, self.loss_samples = 0.0, 0
        self.samples_processed = 0
        self.plugins = plan.plugins if self.trainer is not None else []
        # every rank records every plugin's values (NaN where a rank has none), so the columns agree
        self.metric_names = _PER_RANK + tuple(name for p in plan.plugins for name in p.metrics)
        self._plugin_widths = [len(p.metrics) for p in plan.plugins]
        self._shard = shard

    def start_plugins(self, plan: RunPlan) -> None:
        """Attach the training-time plugins to this rank's training (they may talk to neighbours)."""
        if self.plugins:
            host = self.plugin_host(plan)
            for plugin in self.plugins:
                plugin.start(host)

    def plugin_host(self, plan: RunPlan) -> PluginHost:
        """Return what the plugins may use on this rank."""
        return PluginHost(
            comm=self.comm,
            rank=self.rank,
            neighbors=plan.topology.neighbors(self.rank),
            num_classes=len(plan.manifest.classes),
            model=self.model,
            params=self.params,
            stream=self.trainer.stream,
            trainer=self.trainer,
            traffic=self.traffic,
            shard_x=self._shard.x,
            shard_y=self._shard.y,
            seed=self.config.seed,
            rounds=self.config.rounds,
            device=self.params.device,
        )

    def _private(self, mechanism, stream: BatchStream, device) -> NodePrivacy:
        """Set up --dp on this node: its accountant, and DP-SGD's private gradients if chosen."""
        config = self.config
        mechanism.check_model(self.model)
        privacy = NodePrivacy(
            mechanism,
            samples=stream.num_samples,
            batch_size=config.batch_size,
            delta=config.dp_delta,
            target_epsilon=config.dp_target_epsilon,
            seed=config.seed,
            rank=self.rank,
            deterministic=config.deterministic,
            device=device,
        )
        x, y = stream.full_batch()
        gradient = mechanism.make_gradient(
            self.model, self.params, x, y, config.batch_size, privacy.generator
        )
        if gradient is not None:
            self.trainer.gradient = gradient
        elif mechanism.level == "sample":  # a plugin that would train on raw batches while reporting ε
            raise ConfigError(
                f"--dp {mechanism.name} is sample-level but builds no private gradient; fix the plugin"
            )
        return privacy

    def steps_in(self, round_index: int) -> int:
        """Draw the local steps of ``round_index`` (0 where the rank does not train in it)."""
        if self.trainer is None:
            return 0
        steps = self.local_steps.draw(self.steps_rng) if self.algorithm.trains(self.rank, round_index) else 0
        for plugin in self.plugins:  # every rank with a shard, every round: some plugins communicate
            steps = plugin.before_round(round_index, steps)
        return steps

    def round(self, round_index: int, steps: int) -> None:
        if steps:
            self.train_privately(steps)
        self.algorithm.communicate(self.params.flat, round_index)

    def train_privately(self, steps: int) -> None:
        """Take ``steps`` local steps; under --dp privatize them as the mechanism says, and charge them."""
        if self.privacy is None:
            self.train(steps)
            return
        self.privacy.train(self.params.flat, lambda: self.train(steps))
        self.privacy.spend(steps)

    def train(self, steps: int) -> None:
        stats = self.trainer.run(steps)
        self.compute_s += stats.seconds
        self.loss_sum += stats.loss_sum
        self.loss_samples += stats.samples
        self.samples_processed += stats.samples

    def per_rank_values(self, accuracy: float, loss: float) -> np.ndarray:
        train_loss = self.loss_sum / self.loss_samples if self.loss_samples else float("nan")
        if self.privacy is not None:
            # computed from raw samples and gathered by rank 0: under --dp it must not leave the node
            train_loss = float("nan")
        self.loss_sum, self.loss_samples = 0.0, 0
        totals = self.traffic.totals()
        return np.array(
            [
                accuracy,
                loss,
                train_loss,
                totals["bytes_sent"],
                totals["bytes_received"],
                totals["fp32_bytes_sent"],
                totals["data_bytes_sent"],
                totals["data_bytes_received"],
                self.samples_processed,
                self.compute_s,
                totals["comm_s"],
                self.codec.seconds,
                totals["link_s"],
                *self.gossip_values(),
                *self.privacy_values(),
                *self.plugin_values(),
            ],
            dtype=np.float64,
        )

    def plugin_values(self) -> list[float]:
        """Return every plugin's values in the order of ``metric_names`` (NaN on a rank without a shard)."""
        if not self.plugins:
            return [np.nan] * sum(self._plugin_widths)
        values = []
        for plugin, width in zip(self.plugins, self._plugin_widths, strict=True):
            mine = tuple(plugin.values())
            if len(mine) != width:
                raise RuntimeError(f"plugin {plugin.name} returned {len(mine)} values for {width} metrics")
            values.extend(mine)
        return values

    def privacy_values(self) -> tuple[float, float, float]:
        """Return ε, δ and whether the budget stopped training (NaN without --dp or a shard)."""
        if self.privacy is None:
            return (np.nan,) * 3
        return (self.privacy.epsilon, self.privacy.delta, float(self.privacy.stopped))

    def gossip_values(self) -> tuple[float, float, float, float]:
        """Return interactions, offers served, mean staleness and idle seconds (NaN unless asynchronous)."""
        if self.gossip is None:
            return (np.nan,) * 4
        stats = self.gossip.stats
        return (stats.interactions, stats.offers_served, stats.mean_staleness, stats.idle_s)


def _evaluate(
    node: _RankState, round_index: int, wall: float, writer: MetricsWriter | None, info: RoundInfo
) -> None:
    """Evaluate every rank's model and the average model; rank 0 records (not counted as traffic)."""
    own = evaluate(node.model, node.test_x, node.test_y)
    flat = node.params.flat
    average = flat.detach().cpu().numpy().astype(np.float64)
    node.comm.Allreduce(MPI.IN_PLACE, average, op=MPI.SUM)
    average /= node.comm.Get_size()
    distance = float(np.sum((flat.detach().cpu().numpy() - average) ** 2))
    consensus = node.comm.allreduce(distance, op=MPI.SUM) / node.comm.Get_size()
    names = node.metric_names
    gathered = np.empty((node.comm.Get_size(), len(names)), dtype=np.float64) if node.rank == 0 else None
    node.comm.Gather(node.per_rank_values(own.accuracy, own.loss), gathered, root=0)
    if node.rank != 0:
        return
    avg_eval = evaluate_parameters(node.model, flat, average, node.test_x, node.test_y)
    per_rank = {name: gathered[:, i] for i, name in enumerate(names)}
    scalars = {
        "avg_model_accuracy": avg_eval.accuracy,
        "avg_model_loss": avg_eval.loss,
        "consensus_distance": consensus,
    }
    writer.append(round_index, wall, per_rank, scalars)
    info.mean_accuracy = float(np.mean(per_rank["test_accuracy"]))
    info.avg_model_accuracy = avg_eval.accuracy
    info.mb_sent = float(per_rank["bytes_sent"].sum()) / 1e6
