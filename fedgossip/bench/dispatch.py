"""Data-dependent dispatching against iid and Dirichlet splits: local models and the average model.

For each scheme the same digits data is split across the same nodes. Two figures:

- *local*: every node trains a model on its own shard alone (no communication),
  and each test point is answered by the node it is routed to. Dispatching
  routes a point by the partition's saved rule (its nearest centres); iid and
  Dirichlet splits have no rule, so a point goes to a node drawn at random.
  This is the setting of data-dependent dispatching: similar points on one
  node make each node's rule locally simple.
- *average model*: a real ``mpiexec`` D-PSGD job on the partition; the accuracy
  of the average of the nodes' models on the whole test set.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedgossip.bench.jobs import Scenario, run_scenario
from fedgossip.data.create import PartitionRequest, create_partition
from fedgossip.data.shards import Partition, ShardData
from fedgossip.local.batches import BatchStream
from fedgossip.local.flat import FlatParameters
from fedgossip.local.models.base import build_model
from fedgossip.local.optim import make_lr_schedule, make_optimizer
from fedgossip.local.trainer import LocalTrainer

__all__ = ["DISPATCH_SCHEMES", "bench_dispatch", "local_accuracy"]

DISPATCH_SCHEMES = ("dispatch", "iid", "dirichlet:alpha=0.5")
_LOCAL_EPOCHS, _LOCAL_LR, _BATCH = 30, 0.05, 16


def bench_dispatch(
    work: Path,
    ranks: int = 16,
    rounds: int = 40,
    seed: int = 0,
    model: str = "mlp",
    schemes: tuple[str, ...] = DISPATCH_SCHEMES,
    on_scheme: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Partition digits by every scheme in ``work``, measure both figures; return the table as plain data."""
    rows = []
    for scheme in schemes:
        if on_scheme is not None:
            on_scheme(scheme)
        data = work / f"digits-{ranks}-{scheme.replace(':', '-').replace('=', '')}-seed{seed}"
        if not (data / "partition.json").exists():
            create_partition(PartitionRequest("digits", scheme, ranks, seed), data)
        partition = Partition(data)
        local = local_accuracy(partition, model, seed)
        scenario = Scenario(f"dpsgd on {scheme}", "dpsgd", "none")
        run = run_scenario(scenario, data, work / "runs", ranks, rounds, seed, ("--model", model))
        rows.append(
            {
                "scheme": partition.manifest.scheme,
                "routing": local["routing"],
                "local_routed_accuracy": local["routed_accuracy"],
                "local_mean_node_accuracy": local["mean_node_accuracy"],
                "avg_model_accuracy": run["avg_model_accuracy"],
                "partition": str(data),
                "run": run["run"],
                "stats": partition.manifest.extra.get("dispatch") or {},
            }
        )
    return {
        "benchmark": "dispatch",
        "data": f"digits, {ranks} nodes",
        "ranks": ranks,
        "rounds": rounds,
        "model": model,
        "local_epochs": _LOCAL_EPOCHS,
        "seed": seed,
        "rows": rows,
    }


def local_accuracy(partition: Partition, model: str, seed: int) -> dict[str, Any]:
    """Train one model per shard alone; return the accuracy of answering each test point by its node.

    ``routed_accuracy`` is over all test points, each answered by the node it is
    routed to; ``mean_node_accuracy`` is the mean over nodes of each node's
    accuracy on the points routed to it (nodes receiving none are left out).
    """
    manifest = partition.manifest
    test = partition.read_test()
    if "dispatch" in manifest.extra:
        nodes = partition.dispatch_rule().route(test.x)[:, 0]
        routing = "dispatch rule"
    else:
        nodes = np.random.default_rng(seed).integers(0, manifest.nodes, len(test.y))
        routing = "random"
    correct = np.zeros(len(test.y), dtype=bool)
    per_node = []
    for node in range(manifest.nodes):
        mine = np.flatnonzero(nodes == node)
        if not len(mine):
            continue
        trained = _train_alone(partition.read_shard(node), manifest, model, seed, node)
        with torch.no_grad():
            logits = trained(torch.from_numpy(test.x[mine]))
        hits = logits.argmax(dim=1).numpy() == test.y[mine]
        correct[mine] = hits
        per_node.append(float(hits.mean()))
    return {
        "routing": routing,
        "routed_accuracy": float(correct.mean()),
        "mean_node_accuracy": float(np.mean(per_node)),
    }


def _train_alone(shard: ShardData, manifest, model: str, seed: int, node: int) -> torch.nn.Module:
    net = build_model(model, tuple(manifest.input_shape), len(manifest.classes), seed)
    params = FlatParameters(net)
    stream = BatchStream(shard.x, shard.y, _BATCH, seed=[seed, node])
    optimizer = make_optimizer("sgd", net.parameters(), _LOCAL_LR, momentum=0.9)
    steps = _LOCAL_EPOCHS * stream.steps_per_epoch
    trainer = LocalTrainer(net, params, optimizer, make_lr_schedule("cosine", optimizer, steps), stream)
    trainer.run(steps)
    net.eval()
    return net
