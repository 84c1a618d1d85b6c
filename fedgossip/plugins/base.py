"""The contract of a training-time plugin, what it may touch on its node, and the registry.

A plugin is built for every node from the same spec (each node its own instance)
and started once the node's model, data stream and trainer exist. It then sees
every synchronous round before the local steps, and may change the round's
number of steps (importance filtering skips the steps of the samples it hides)
or the data the stream serves (data sharing appends what neighbours sent). Each
plugin reports a few per-node values at every evaluation, recorded in
``metrics.h5`` under its ``metrics`` names.

A plugin talks to its neighbours in :meth:`TrainingPlugin.conversation`: requests
(:mod:`fedgossip.comm.conversation`) that the rank's network answers for all its
nodes at once, in memory between co-hosted nodes and by MPI otherwise, so it runs
with any ``--nodes``. (A plugin may instead use ``host.comm`` itself, point to
point between ranks; it then declares ``one_node_per_rank``, and a run hosting
several nodes on a rank refuses it.) Conversations run on every node with a shard,
every round, in plugin order; a node without a shard (fedavg's server) runs no
plugins, so a plugin that communicates must refuse algorithms with a server in
:meth:`TrainingPlugin.check`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from mpi4py import MPI
from torch import nn

from fedgossip.comm.conversation import Conversation
from fedgossip.comm.traffic import Traffic
from fedgossip.local.batches import BatchStream
from fedgossip.local.flat import FlatParameters
from fedgossip.local.trainer import LocalTrainer
from fedgossip.registry import Plugin, Registry

__all__ = ["PluginHost", "TrainingPlugin", "PLUGINS"]


@dataclass
class PluginHost:
    """What a training-time plugin may use on its node.

    ``shard_x``/``shard_y`` are the node's own samples (numpy, as read from its
    shard); the stream serves them first, at positions ``0..len(shard_y)-1``,
    followed by any samples a plugin appended with :meth:`BatchStream.set_extra`.
    """

    comm: MPI.Intracomm  # the rank's; only for plugins that declare one_node_per_rank
    rank: int  # this node's id (the name predates co-hosted nodes: it is the node, not the process)
    neighbors: tuple[int, ...]  # this node's neighbours in the run's communication graph
    num_classes: int
    model: nn.Module
    params: FlatParameters
    stream: BatchStream
    trainer: LocalTrainer
    traffic: Traffic
    shard_x: np.ndarray
    shard_y: np.ndarray
    seed: int
    rounds: int
    device: torch.device


class TrainingPlugin(Plugin, ABC):
    """A hook on each node's training: it may change the data the node trains on, and how much.

    Subclasses set ``name`` and ``params`` like every plugin, and:

    - ``kind``: ``"filter"`` for plugins chosen with ``--filter`` (they hide
      samples), ``"share-data"`` for ``--share-data``, ``"other"`` for the rest
      (``--plugin``);
    - ``metrics``: the names of the per-node values :meth:`values` returns;
    - ``shares_raw_data``: True when samples (even quantized) leave the node, which
      no differential-privacy claim survives, so ``--dp`` refuses it;
    - ``one_node_per_rank``: True when it sends by MPI through ``host.comm`` itself
      instead of :meth:`conversation`, so its rank can host only one node (the
      default, safe for a plugin written before co-hosted nodes).
    """

    kind: ClassVar[str] = "other"
    metrics: ClassVar[tuple[str, ...]] = ()
    shares_raw_data: ClassVar[bool] = False
    synchronous_only: ClassVar[bool] = True  # the asynchronous engine has no rounds to hook into
    one_node_per_rank: ClassVar[bool] = True

    def check(self, algorithm: Any, config: Any, privacy: Any) -> None:
        """Raise ``ConfigError`` if this plugin cannot run with the chosen algorithm, config or --dp.

        Called on every rank before any state is built; the default refuses nothing.
        """

    @abstractmethod
    def start(self, host: PluginHost) -> None:
        """Attach to the node's training, once, before round 1 (without messages: see conversation)."""

    def conversation(self, round_index: int) -> Conversation | None:
        """Return what the node says to its neighbours before round ``round_index``'s local steps.

        Called on every node with a shard, every round, before :meth:`before_round`;
        ``None`` (the default): nothing this round. The network answers the requests of
        all the rank's nodes together, so what a node expects in its k-th request its
        peer must send in its k-th.
        """
        return None

    def before_round(self, round_index: int, steps: int) -> int:
        """Return the local steps to take in round ``round_index`` (1-based), given the planned ``steps``."""
        return steps

    def values(self) -> tuple[float, ...]:
        """Return this node's current values of ``metrics``, in that order."""
        return ()

    def state_dict(self) -> dict[str, Any]:
        """Return what a checkpoint needs to resume this plugin (tensors, arrays and plain data only)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""

    def restore(self, host: PluginHost, state: dict[str, Any]) -> None:
        """Attach to a resumed run's training from a checkpoint, instead of start(): no first-round work.

        The training loop calls it before it restores the stream and the trainer, which then
        overwrite whatever this changed in them with the checkpoint's own state. The default
        starts and loads; a plugin whose ``start`` communicates or decides must override it.
        """
        self.start(host)
        self.load_state_dict(state)


PLUGINS: Registry[TrainingPlugin] = Registry("plugins", TrainingPlugin)
