"""The algorithm contract: what the training loop calls once per round, and what it may use."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from fedgossip.algorithms.asynchronous import AsyncGossip
from fedgossip.algorithms.context import GossipContext
from fedgossip.comm.conversation import Conversation
from fedgossip.errors import ConfigError
from fedgossip.registry import Plugin, Registry
from fedgossip.settings.algorithm_shorthands import SHORTHANDS, misplaced_shorthands
from fedgossip.settings.config import TrainConfig
from fedgossip.specs import Spec, bind, parse_spec

if TYPE_CHECKING:
    from fedgossip.compress.base import Compressor
    from fedgossip.local.correction import UpdateCorrection

__all__ = ["Algorithm", "ALGORITHMS", "round_rng", "check_state"]


def round_rng(seed: int, round_index: int, stream: int) -> np.random.Generator:
    """Return a generator every rank builds identically for ``round_index``.

    Used for draws all nodes must agree on without communicating (matchings,
    client sampling); ``stream`` keeps different uses independent.
    """
    return np.random.default_rng([seed, round_index, stream])


def check_state(owner: str, state: Any, template: Any) -> None:
    """Raise one ``ValueError`` naming every place a saved ``state`` does not fit this run's ``template``.

    ``template`` is the state this run would save now: dictionaries must have the same keys,
    tensors and arrays the same shapes, and a part present in one must not be ``None`` in the other.
    """
    problems: list[str] = []
    _compare(state, template, owner, problems)
    if problems:
        raise ValueError(f"{owner} state does not fit this run: " + "; ".join(problems))


def _compare(saved: Any, expected: Any, where: str, problems: list[str]) -> None:
    """Append to ``problems`` where ``saved`` differs from ``expected`` in structure (not in values)."""
    if (saved is None) != (expected is None):
        problems.append(
            f"{where} is {'absent' if saved is None else 'present'} in the checkpoint, "
            f"{'present' if saved is None else 'absent'} in this run (saved with another --compressor?)"
        )
    elif isinstance(expected, dict):
        if not isinstance(saved, dict):
            problems.append(f"{where} should be a dict, got {type(saved).__name__}")
            return
        missing, extra = set(expected) - set(saved), set(saved) - set(expected)
        if missing or extra:
            problems.append(
                f"{where} has keys {sorted(map(str, saved))}, expected {sorted(map(str, expected))}"
            )
        for key in sorted(set(expected) & set(saved), key=str):
            _compare(saved[key], expected[key], f"{where}.{key}", problems)
    elif isinstance(expected, torch.Tensor | np.ndarray):
        shape = getattr(saved, "shape", None)
        shape = None if shape is None else tuple(shape)
        if shape != tuple(expected.shape):
            problems.append(f"{where} has shape {shape}, expected {tuple(expected.shape)}")


class Algorithm(Plugin, ABC):
    """Mix the nodes' models once per round, or their gradients at every step.

    Every node has its own instance. The engine calls ``setup`` once, then each
    round runs local steps on the nodes where ``trains`` is true and runs every
    node's :meth:`conversation` with the model's flat parameter vector, which it
    updates in place. A conversation is a generator of network requests
    (:mod:`fedgossip.comm.conversation`), so that the nodes of one process all
    speak before any waits for an answer. An algorithm with
    ``exchanges_gradients`` (comp-ams) also has its :meth:`gradient_conversation`
    run between backward and every optimizer step.
    """

    server: int | None = None  # node that holds no shard and only aggregates (fedavg)
    graph: str | None = None  # the topology it always runs on, whatever --topology says (None: --topology)
    # Whether it exchanges gradients at every local step (reduce_gradient) instead of models per round.
    exchanges_gradients: bool = False
    supports_async: bool = False  # whether it has an asynchronous mode (--async)
    # Whether --on-failure continue may drop lost nodes and set it up afresh on the bridged graph
    # (fedgossip.run.recovery): its state is per edge or per node, and restarts at zero alike on both ends.
    survives_lost_nodes: ClassVar[bool] = False
    # Where it combines received vectors, for --robust and --attack (fedgossip.byzantine): "gossip"
    # (a neighbourhood), "pair" (one partner) or "server"; None: it carries neither.
    robust_place: ClassVar[str | None] = None
    # A correction the node's local steps apply after every optimizer step (gt), set in setup; None: plain.
    correction: UpdateCorrection | None = None
    # Settings whose default it changes, e.g. {"optimizer": "amsgrad"}; given options still win.
    config_defaults: ClassVar[dict[str, Any]] = {}

    def shard_of(self, node: int) -> int | None:
        """Return the partition shard node ``node`` trains on (``None``: it holds none)."""
        if self.server is None:
            return node
        return None if node == self.server else node - (node > self.server)

    def shards_needed(self, nodes: int) -> int:
        return nodes - (self.server is not None)

    def setup(self, ctx: GossipContext, flat: torch.Tensor) -> None:
        """Prepare per-run state (weights, references); called once on every rank.

        Must not communicate: it runs inside ``agree``, which only stays
        deadlock-free if a rank that fails here leaves no peer waiting.
        """
        self.ctx = ctx

    def consensus_step_for(self, compressor: Compressor) -> float | None:
        """Return the consensus step γ it mixes with under ``compressor`` (None: none), for run.json."""
        return None

    def check_config(self, config: TrainConfig) -> None:
        """Refuse run settings it cannot work with (raise ``ConfigError``); called alike on every rank."""

    def start_async(self, flat: torch.Tensor, rng: np.random.Generator) -> AsyncGossip:
        """Return the engine of its asynchronous mode (``supports_async`` only); called after ``setup``."""
        raise NotImplementedError(f"{self.name} has no asynchronous mode")

    def gradient_conversation(self, grad: torch.Tensor) -> Conversation:
        """Replace this node's gradient, in place, by the one every node applies this step.

        Run between backward and the optimizer step when ``exchanges_gradients``
        is true; every node runs it the same number of times.
        """
        raise NotImplementedError(f"{self.name} exchanges models, not gradients")

    def reduce_gradient(self, grad: torch.Tensor) -> None:
        """Run :meth:`gradient_conversation` for a node alone on its rank (the trainer's gradient hook)."""
        self.ctx.network.converse({self.ctx.node: self.gradient_conversation(grad)})

    def require_lossless(self, ctx: GossipContext, reason: str) -> None:
        """Refuse a lossy compressor in an algorithm that needs exact models, saying why."""
        if ctx.compressed:
            raise ConfigError(
                f"{self.name} cannot use the lossy --compressor {ctx.codec.compressor.name}: {reason}; "
                "use --compressor none"
            )

    def availability_problem(self, compressor: Compressor) -> str | None:
        """Say why it cannot follow ``--availability`` (None: it can), as "is not supported by ..."."""
        return f"is not supported by {self.name}"

    def trains(self, node: int, round_index: int) -> bool:
        """Return whether ``node`` runs local steps in ``round_index`` (never while it is offline)."""
        return node != self.server and self.ctx.is_online(node, round_index)

    def catch_up(self, flat: torch.Tensor) -> Conversation:
        """Bring what it keeps of its neighbours level with their models, after lost nodes were dropped.

        Called once on every node after ``setup`` on the bridged graph (``--on-failure
        continue``); plain averaging keeps nothing, so by default it says nothing.
        """
        return
        yield  # a generator that asks for nothing

    @abstractmethod
    def conversation(self, flat: torch.Tensor, round_index: int) -> Conversation:
        """Exchange with peers and update ``flat`` in place: a generator of network requests."""

    def communicate(self, flat: torch.Tensor, round_index: int) -> None:
        """Run this node's :meth:`conversation` of ``round_index`` for a node alone on its rank."""
        self.ctx.network.converse({self.ctx.node: self.conversation(flat, round_index)})

    def state_dict(self) -> dict[str, Any]:
        """Return what a resumed synchronous run needs; the asynchronous engine is not checkpointed here.

        State re-derived from the round index (``round_rng``) or fixed at ``setup`` is left out.
        """
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`, after ``setup`` on a fresh run of the same settings."""
        check_state(self.name, state, {})


class _AlgorithmRegistry(Registry[Algorithm]):
    """The algorithms' registry: a shorthand option given to an algorithm without that setting says so.

    ``--gamma 0.5 --algorithm swarm`` arrives as ``swarm:gamma=0.5``; the plain registry would call
    gamma an unknown parameter of swarm, without naming the option or the algorithm that has one.
    """

    def create(self, spec: str | Spec, **context: Any) -> Algorithm:
        parsed = parse_spec(spec) if isinstance(spec, str) else spec
        declared = {name: plugin.params for name, plugin in self.available().items()}
        problems = misplaced_shorthands(parsed, declared)
        if not problems:
            return super().create(parsed, **context)
        misplaced = {shorthand.param for shorthand in SHORTHANDS} - {p.name for p in declared[parsed.name]}
        rest = Spec(parsed.name, {key: text for key, text in parsed.args.items() if key not in misplaced})
        try:  # report the spec's other problems too
            bind(rest, declared[parsed.name])
        except ConfigError as exc:
            problems.append(str(exc))
        raise ConfigError("; ".join(problems))


ALGORITHMS: Registry[Algorithm] = _AlgorithmRegistry("algorithms", Algorithm)
