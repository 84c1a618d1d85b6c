"""Build a node from the run's plan, its shard and its device: the one place its parts are wired.

Seeds (STYLE §4): the model is built from the run seed alone, so every node
starts identical, as decentralized SGD assumes; data order, local-step draws,
codec keys and DP noise add the node id, so they differ across nodes.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from mpi4py import MPI

from fedgossip.algorithms.context import GossipContext
from fedgossip.comm.codec import Codec
from fedgossip.comm.network import NodeNetwork
from fedgossip.comm.traffic import Traffic
from fedgossip.data.shards import ShardData
from fedgossip.errors import ConfigError
from fedgossip.local.batches import BatchStream
from fedgossip.local.flat import FlatParameters
from fedgossip.local.models.base import build_model
from fedgossip.local.optim import make_lr_schedule, make_optimizer
from fedgossip.local.slowdown import StepStretcher
from fedgossip.local.trainer import LocalTrainer
from fedgossip.plugins.base import PluginHost
from fedgossip.privacy.node import NodePrivacy
from fedgossip.run.node import Node
from fedgossip.run.plan import RunPlan
from fedgossip.settings.local_steps import MAX_LOCAL_STEPS, FixedSteps

__all__ = ["build_nodes", "build_node"]

# Streams of the generators seeded by (run seed, node), kept apart from the codec's (3).
_LOCAL_STEPS_STREAM, _PARTNER_STREAM, _ATTACK_STREAM = 5, 6, 8


def build_nodes(
    plan: RunPlan,
    shards: dict[int, ShardData | None],
    test: ShardData,
    device: torch.device,
    network: NodeNetwork,
    counts: np.ndarray,
) -> list[Node]:
    """Build the nodes this rank hosts (``shards``: each one's shard); no communication, so it may run
    inside ``agree``. They share the test set, the network and what their algorithms share."""
    test_x, test_y = torch.from_numpy(test.x).to(device), torch.from_numpy(test.y).to(device)
    shared: dict = {}  # what co-hosted algorithms may share (GossipContext.shared)
    return [
        build_node(plan, node_id, shard, (test_x, test_y), device, network, counts, shared)
        for node_id, shard in shards.items()
    ]


def build_node(
    plan: RunPlan,
    node_id: int,
    shard: ShardData | None,
    test: tuple[torch.Tensor, torch.Tensor],
    device: torch.device,
    network: NodeNetwork,
    counts: np.ndarray,
    shared: dict | None = None,
) -> Node:
    """Build node ``node_id`` of this rank; no communication, so it may run inside ``agree``."""
    config = plan.config
    manifest = plan.manifest
    model = build_model(plan.model, tuple(manifest.input_shape), len(manifest.classes), config.seed)
    model.to(device)
    params = FlatParameters(model)
    trainer = _trainer(plan, model, params, shard, node_id, device) if shard is not None else None
    traffic = Traffic()
    codec = Codec(plan.compressor, node_id, params.numel, config.seed)
    algorithm = copy.copy(plan.algorithm)  # every node its own state; set up below, not before
    byzantine = plan.byzantine
    faulty = byzantine is not None and byzantine.active
    context = GossipContext(
        comm=network.parent,
        topology=plan.topology,
        codec=codec,
        traffic=traffic,
        seed=config.seed,
        sample_counts=counts,
        link=plan.link,
        node=node_id,
        network=network,
        shared={} if shared is None else shared,
        availability=plan.availability,
        stacked_gossip=(
            config.vectorize
            and plan.link is None
            and not faulty  # forged and robustly combined models travel one by one
            and len(plan.placement.nodes_of(network.rank)) > 1
        ),
        **(_faulty_neighbours(plan, node_id) if faulty else {}),
    )
    algorithm.setup(context, params.flat)
    node = Node(
        id=node_id,
        model=model,
        params=params,
        test_x=test[0],
        test_y=test[1],
        codec=codec,
        traffic=traffic,
        algorithm=algorithm,
        plugin_metrics=tuple(tuple(p.metrics) for p in plan.plugins),
    )
    if trainer is not None:
        node.trainer = trainer
        trainer.correction = algorithm.correction
        # rounds of epochs take a fixed number of steps too
        node.local_steps = plan.local_steps or _epoch_steps(plan, node_id, trainer.stream)
        node.steps_rng = np.random.default_rng([config.seed, node_id, _LOCAL_STEPS_STREAM])
        if plan.privacy is not None:
            node.privacy = _private(plan, node, device)
        # every node its own instances: a plugin keeps per-node state (scores, received samples)
        node.plugins = copy.deepcopy(plan.plugins)
        node.plugin_host = _plugin_host(plan, node, shard, network.parent)
    if config.asynchronous:
        rng = np.random.default_rng([config.seed, node_id, _PARTNER_STREAM])
        node.gossip = algorithm.start_async(params.flat, rng)
    return node


def _epoch_steps(plan: RunPlan, node_id: int, stream: BatchStream) -> FixedSteps:
    """Return the local steps a round of --local-epochs makes on this node, within MAX_LOCAL_STEPS."""
    epochs = plan.config.local_epochs
    steps = epochs * stream.steps_per_epoch
    if steps > MAX_LOCAL_STEPS:
        raise ConfigError(
            f"--local-epochs {epochs} makes {steps:,} local steps a round on node {node_id} "
            f"({stream.num_samples} samples in batches of {plan.config.batch_size}), more than the "
            f"{MAX_LOCAL_STEPS:,} a round may take; give fewer epochs or a larger --batch-size"
        )
    return FixedSteps(steps)


def _faulty_neighbours(plan: RunPlan, node_id: int) -> dict:
    """Return the GossipContext fields of --attack and --robust for node ``node_id``."""
    byzantine = plan.byzantine
    attacking = node_id in byzantine.attackers
    noise = torch.Generator().manual_seed(
        int(np.random.default_rng([plan.config.seed, node_id, _ATTACK_STREAM]).integers(2**62))
    )
    return {
        "attack": byzantine.attack if attacking else None,
        "attackers": frozenset(byzantine.attackers),
        "aggregator": None if byzantine.aggregator.is_mean else byzantine.aggregator,
        "attack_noise": noise if attacking else None,
    }


def _trainer(
    plan: RunPlan, model, params: FlatParameters, shard: ShardData, node_id: int, device
) -> LocalTrainer:
    """Build the node's local training: its batches, optimizer, schedule and slowdown."""
    config = plan.config
    labels = shard.y
    attack = None if plan.byzantine is None else plan.byzantine.attack
    if attack is not None and attack.flips_labels and node_id in plan.attackers:
        labels = len(plan.manifest.classes) - 1 - labels  # label flip: y → C − 1 − y
    # Data order must differ across nodes: the node enters the seed.
    stream = BatchStream(shard.x, labels, config.batch_size, seed=[config.seed, node_id], device=device)
    steps = plan.local_steps
    mean_steps = steps.mean if steps is not None else config.local_epochs * stream.steps_per_epoch
    factor = plan.slowdown_of(node_id)
    # --momentum is SGD's alone (Adam's first-moment decay is the spec's beta1); its default
    # of 0.9 must not reach an adam or amsgrad optimizer, which refuses a momentum.
    momentum = config.momentum if plan.optimizer.name in ("sgd", "qgm") else 0.0
    optimizer = make_optimizer(plan.optimizer, model.parameters(), config.lr, momentum, config.weight_decay)
    total_steps = max(1, round(config.rounds * mean_steps))
    schedule = make_lr_schedule(config.lr_schedule, optimizer, total_steps)
    return LocalTrainer(
        model,
        params,
        optimizer,
        schedule,
        stream,
        stretcher=StepStretcher(factor) if factor > 1 else None,
    )


def _private(plan: RunPlan, node: Node, device) -> NodePrivacy:
    """Set up --dp on this node: its accountant, and DP-SGD's private gradients if chosen."""
    config, mechanism, stream = plan.config, plan.privacy, node.trainer.stream
    mechanism.check_model(node.model)
    privacy = NodePrivacy(
        mechanism,
        samples=stream.num_samples,
        batch_size=config.batch_size,
        delta=config.dp_delta,
        target_epsilon=config.dp_target_epsilon,
        seed=config.seed,
        rank=node.id,
        deterministic=config.deterministic,
        device=device,
    )
    _check_budget_allows_a_round(plan, node, privacy)
    x, y = stream.full_batch()
    gradient = mechanism.make_gradient(node.model, node.params, x, y, config.batch_size, privacy.generator)
    if gradient is not None:
        node.trainer.gradient = gradient
    elif mechanism.level == "sample":  # a plugin that would train on raw batches while reporting ε
        raise ConfigError(
            f"--dp {mechanism.name} is sample-level but builds no private gradient; fix the plugin"
        )
    return privacy


def _check_budget_allows_a_round(plan: RunPlan, node: Node, privacy: NodePrivacy) -> None:
    """Refuse a --dp-target-epsilon that the node's first round would spend (noise=0: any), before training.

    A synchronous run would end budget-exhausted after 0 rounds, with nothing learned and exit
    status 0. With --async only that node stops training (it keeps serving its neighbours), which
    may be meant; a mechanism without noise leaves no node a single step, so it is refused there too.
    """
    steps = node.local_steps.fixed or 1  # a drawn count takes at least one step
    mechanism = privacy.mechanism
    if not privacy.would_exceed(steps) or (plan.config.asynchronous and mechanism.noise > 0):
        return
    if mechanism.noise == 0:
        why = f"--dp {mechanism.spec} adds no noise, so its ε is infinite"
        fix = "give it noise > 0 (e.g. noise=1.1) or drop --dp-target-epsilon"
    else:
        why = (
            f"the first round of node {node.id} ({steps} local steps on {privacy.samples} samples) "
            f"would take ε to {privacy.epsilon_after(steps):.3g} at δ={privacy.delta:g}"
        )
        fix = "raise the noise or the target, or take fewer local steps a round"
    raise ConfigError(
        f"--dp-target-epsilon {plan.config.dp_target_epsilon:g} would stop training before it starts: "
        f"{why}; {fix}"
    )


def _plugin_host(plan: RunPlan, node: Node, shard: ShardData, comm: MPI.Intracomm) -> PluginHost:
    """Return what the training-time plugins may use on this node."""
    return PluginHost(
        comm=comm,
        rank=node.id,
        neighbors=plan.topology.neighbors(node.id),
        num_classes=len(plan.manifest.classes),
        model=node.model,
        params=node.params,
        stream=node.trainer.stream,
        trainer=node.trainer,
        traffic=node.traffic,
        shard_x=shard.x,
        shard_y=shard.y,
        seed=plan.config.seed,
        rounds=plan.config.rounds,
        device=node.params.device,
    )
