"""A node: one device's model, data stream, optimizer, codec, algorithm state, privacy and counters.

The engine drives nodes; nothing reaches into a node's parts from outside but
through the methods here: the local steps of a round, the metrics row of an
evaluation, and :meth:`Node.state_dict` / :meth:`Node.load_state_dict` for
checkpoints. A node is built by :func:`fedgossip.run.assemble.build_node`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from fedgossip.algorithms.asynchronous import AsyncGossip
from fedgossip.algorithms.base import Algorithm
from fedgossip.comm.codec import Codec
from fedgossip.comm.conversation import Conversation
from fedgossip.comm.traffic import Traffic
from fedgossip.local.flat import FlatParameters
from fedgossip.local.quasi_global import QuasiGlobalMomentum
from fedgossip.local.trainer import LocalStats, LocalTrainer
from fedgossip.plugins.base import PluginHost, TrainingPlugin
from fedgossip.privacy.node import NodePrivacy
from fedgossip.settings.local_steps import LocalSteps

__all__ = ["NODE_METRICS", "AVAILABILITY_METRICS", "NodeCounters", "Node"]

NODE_METRICS = (
    "test_accuracy",
    "test_loss",
    "train_loss",
    "bytes_sent",
    "bytes_received",
    "fp32_bytes_sent",
    "data_bytes_sent",  # samples shared by --share-data, counted apart from the model's bytes
    "data_bytes_received",
    "bytes_within",  # the part of bytes_sent that went to nodes of the same process, through memory
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
"""The per-node columns of every evaluation, in metrics.h5's order; plugins' own columns follow."""

AVAILABILITY_METRICS = ("online_rounds",)
"""The columns of a run with --availability (other than always), after NODE_METRICS; absent otherwise,
so the metrics of runs without it stay as they were to the bit."""


@dataclass
class NodeCounters:
    """What a node's local steps did, cumulative except the loss, which each evaluation resets."""

    compute_s: float = 0.0
    loss_sum: float = 0.0  # summed training loss since the last evaluation
    loss_samples: int = 0
    samples_processed: int = 0


@dataclass
class Node:
    """One device of the run and everything its future depends on."""

    id: int  # the node's id in the topology and the partition (its rank, while a rank hosts one node)
    model: nn.Module
    params: FlatParameters  # the model's parameters as views into one flat vector
    test_x: torch.Tensor
    test_y: torch.Tensor
    codec: Codec
    traffic: Traffic
    algorithm: Algorithm
    # Local training; all None on a node without a shard (fedavg's server).
    trainer: LocalTrainer | None = None
    local_steps: LocalSteps | None = None
    steps_rng: np.random.Generator | None = None  # draws of random local-step counts, this node's own
    privacy: NodePrivacy | None = None
    plugins: tuple[TrainingPlugin, ...] = ()
    plugin_host: PluginHost | None = None
    gossip: AsyncGossip | None = None  # the asynchronous protocol's state, with --async
    plugin_metrics: tuple[tuple[str, ...], ...] = ()  # every plugin's columns, also on nodes without any
    counters: NodeCounters = field(default_factory=NodeCounters)
    rounds_ended: int = 0  # the last synchronous round over (0: none yet); its online count follows from it

    @property
    def flat(self) -> torch.Tensor:
        return self.params.flat

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Return the columns of :meth:`metrics_row`, the same on every node of the run."""
        emulated = AVAILABILITY_METRICS if self.algorithm.ctx.availability is not None else ()
        return NODE_METRICS + emulated + tuple(name for names in self.plugin_metrics for name in names)

    def start_plugins(self) -> None:
        """Attach the training-time plugins to this node's training (they may talk to neighbours)."""
        for plugin in self.plugins:
            plugin.start(self.plugin_host)

    def plugin_conversation(self, round_index: int) -> Conversation:
        """Say what the node's plugins say to its neighbours before round ``round_index``, in their order."""
        for plugin in self.plugins:
            conversation = plugin.conversation(round_index)
            if conversation is not None:
                yield from conversation

    def draw_steps(self) -> int:
        """Draw how many local steps the node takes next (0 on a node without a shard)."""
        if self.trainer is None:
            return 0
        return self.local_steps.draw(self.steps_rng)

    def steps_in(self, round_index: int) -> int:
        """Draw the local steps of synchronous round ``round_index`` (0 where the node sits it out)."""
        if self.trainer is None:
            return 0
        steps = self.draw_steps() if self.algorithm.trains(self.id, round_index) else 0
        for plugin in self.plugins:  # every node with a shard, every round: some plugins communicate
            steps = plugin.before_round(round_index, steps)
        return steps

    def end_round(self, round_index: int | None = None) -> None:
        """Tell the node a round (local steps, exchange) is over: quasi-global momentum reads the change.

        ``round_index``: the synchronous round that ended (None: an asynchronous burst).
        """
        if round_index is not None:
            self.rounds_ended = round_index
        if self.trainer is not None and isinstance(self.trainer.optimizer, QuasiGlobalMomentum):
            self.trainer.optimizer.end_round()

    def train_privately(self, steps: int, each_step: Callable[[], None] | None = None) -> None:
        """Take ``steps`` local steps; under --dp privatize them as the mechanism says, and charge them.

        ``each_step`` runs after every single step (the asynchronous schedule serves
        its neighbours there); without it the steps run as one burst.
        """
        if self.privacy is None:
            self._train(steps, each_step)
            return
        self.privacy.train(self.flat, lambda: self._train(steps, each_step))
        self.privacy.spend(steps)

    def finish_steps(self, stats: LocalStats, steps: int) -> None:
        """Count ``steps`` local steps trained outside :meth:`train_privately`, and charge their privacy.

        For steps driven from outside (in lockstep, or batched): only sample-level privacy,
        already inside each step's gradient, can have been applied to them.
        """
        self.count_steps(stats)
        if self.privacy is not None:
            self.privacy.spend(steps)

    def _train(self, steps: int, each_step: Callable[[], None] | None) -> None:
        if each_step is None:
            self.count_steps(self.trainer.run(steps))
            return
        for _ in range(steps):
            self.count_steps(self.trainer.run(1))
            each_step()

    def count_steps(self, stats: LocalStats) -> None:
        """Add what local steps did to the node's counters."""
        counters = self.counters
        counters.compute_s += stats.seconds
        counters.loss_sum += stats.loss_sum
        counters.loss_samples += stats.samples
        counters.samples_processed += stats.samples

    def metrics_row(self, accuracy: float, loss: float) -> dict[str, float]:
        """Return this evaluation's values by column; resets the training-loss average."""
        counters = self.counters
        train_loss = counters.loss_sum / counters.loss_samples if counters.loss_samples else float("nan")
        if self.privacy is not None:
            # computed from raw samples and gathered by rank 0: under --dp it must not leave the node
            train_loss = float("nan")
        counters.loss_sum, counters.loss_samples = 0.0, 0
        totals = self.traffic.totals()
        row = {
            "test_accuracy": accuracy,
            "test_loss": loss,
            "train_loss": train_loss,
            **{name: totals[name] for name in _TRAFFIC_METRICS},
            "samples_processed": counters.samples_processed,
            "compute_s": counters.compute_s,
            "comm_s": totals["comm_s"],
            "codec_s": self.codec.seconds,
            "link_s": totals["link_s"],
            "online_rounds": self._online_rounds(),
            **self._gossip_values(),
            **self._privacy_values(),
            **self._plugin_values(),
        }
        return row

    def metrics_vector(self, accuracy: float, loss: float) -> np.ndarray:
        """Return :meth:`metrics_row` as float64 values in the order of :attr:`metric_names`."""
        row = self.metrics_row(accuracy, loss)
        return np.array([row[name] for name in self.metric_names], dtype=np.float64)

    def _online_rounds(self) -> float:
        """Return how many of the rounds ended so far the node was online (all: without --availability)."""
        schedule = self.algorithm.ctx.availability
        if schedule is None:
            return float(self.rounds_ended)
        return float(schedule.online_rounds(upto=self.rounds_ended)[self.id])

    def _gossip_values(self) -> dict[str, float]:
        if self.gossip is None:
            return dict.fromkeys(_GOSSIP_METRICS, np.nan)
        stats = self.gossip.stats
        values = (stats.interactions, stats.offers_served, stats.mean_staleness, stats.idle_s)
        return dict(zip(_GOSSIP_METRICS, values, strict=True))

    def _privacy_values(self) -> dict[str, float]:
        if self.privacy is None:
            return dict.fromkeys(_PRIVACY_METRICS, np.nan)
        privacy = self.privacy
        values = (privacy.epsilon, privacy.delta, float(privacy.stopped))
        return dict(zip(_PRIVACY_METRICS, values, strict=True))

    def _plugin_values(self) -> dict[str, float]:
        """Return every plugin's values (NaN on a node without plugins, so the columns agree)."""
        if not self.plugins:
            return {name: np.nan for names in self.plugin_metrics for name in names}
        values = {}
        for plugin, names in zip(self.plugins, self.plugin_metrics, strict=True):
            mine = tuple(plugin.values())
            if len(mine) != len(names):
                raise RuntimeError(
                    f"plugin {plugin.name} returned {len(mine)} values for {len(names)} metrics"
                )
            values.update(zip(names, mine, strict=True))
        return values

    def state_dict(self) -> dict[str, Any]:
        """Return everything the node's future depends on: tensors, arrays and plain data only."""
        trainer = self.trainer
        return {
            "model": self.flat.detach().cpu().clone(),
            "counters": asdict(self.counters),
            "codec": self.codec.state_dict(),
            "traffic": self.traffic.state_dict(),
            "algorithm": self.algorithm.state_dict(),
            "training": None
            if trainer is None
            else {
                "optimizer": trainer.optimizer.state_dict(),
                "schedule": None if trainer.schedule is None else trainer.schedule.state_dict(),
                "trainer": trainer.state_dict(),
                "stream": trainer.stream.state_dict(),
                "steps_rng": self.steps_rng.bit_generator.state,
            },
            "privacy": None if self.privacy is None else self.privacy.state_dict(),
            "plugins": [plugin.state_dict() for plugin in self.plugins],
            "gossip": None if self.gossip is None else self.gossip.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` into this freshly built node, in dependency order."""
        with torch.no_grad():
            self.flat.copy_(torch.as_tensor(state["model"]).to(self.params.device))
        counters = state["counters"]
        self.counters = NodeCounters(
            compute_s=float(counters["compute_s"]),
            loss_sum=float(counters["loss_sum"]),
            loss_samples=int(counters["loss_samples"]),
            samples_processed=int(counters["samples_processed"]),
        )
        self.codec.load_state_dict(state["codec"])
        self.algorithm.load_state_dict(state["algorithm"])
        training = state["training"]
        if (training is None) != (self.trainer is None):
            raise ValueError("the checkpoint and this node disagree on whether it trains")
        if self.trainer is not None:
            trainer = self.trainer
            # plugins first: share-data puts its received samples back into the stream, whose own
            # state (order, position, hidden samples) is then restored exactly on top
            for plugin, saved in zip(self.plugins, state["plugins"], strict=True):
                plugin.restore(self.plugin_host, saved)
            trainer.optimizer.load_state_dict(training["optimizer"])
            if trainer.schedule is not None:
                trainer.schedule.load_state_dict(training["schedule"])
            trainer.load_state_dict(training["trainer"])
            trainer.stream.load_state_dict(training["stream"])
            self.steps_rng.bit_generator.state = training["steps_rng"]
        if (state["privacy"] is None) != (self.privacy is None):
            raise ValueError("the checkpoint and this node disagree on --dp")
        if self.privacy is not None:
            self.privacy.load_state_dict(state["privacy"])
        if (state["gossip"] is None) != (self.gossip is None):
            raise ValueError("the checkpoint and this run disagree on --async")
        if self.gossip is not None:
            self.gossip.load_state_dict(state["gossip"])
        # last: restoring a plugin may have counted bytes (it must not, but the saved totals are the truth)
        self.traffic.load_state_dict(state["traffic"])


_TRAFFIC_METRICS = (
    "bytes_sent",
    "bytes_received",
    "fp32_bytes_sent",
    "data_bytes_sent",
    "data_bytes_received",
    "bytes_within",
)
_GOSSIP_METRICS = ("interactions", "offers_served", "staleness_steps", "idle_s")
_PRIVACY_METRICS = ("epsilon", "dp_delta", "dp_stopped")
