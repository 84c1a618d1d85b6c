"""Time per round of fedgossip's ``allreduce`` with one local step beside torch DDP (gloo).

Both run in the same MPI job, one after the other, on the same model, shards,
batch size and batch order, so the ratio compares like with like on this
machine. DDP needs a TCP rendezvous: rank 0 picks a free local port, so this
benchmark runs on one host.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from mpi4py import MPI
from torch.nn.functional import cross_entropy
from torch.nn.parallel import DistributedDataParallel

from fedgossip.algorithms.allreduce import AllReduce
from fedgossip.algorithms.context import GossipContext
from fedgossip.comm.codec import Codec
from fedgossip.comm.traffic import Traffic
from fedgossip.compress.none import NoCompression
from fedgossip.data.shards import Partition
from fedgossip.local.batches import BatchStream
from fedgossip.local.flat import FlatParameters
from fedgossip.local.models.base import build_model
from fedgossip.local.optim import make_optimizer
from fedgossip.local.trainer import LocalTrainer
from fedgossip.topology.base import make_topology

__all__ = ["bench_ddp"]


def bench_ddp(
    comm: MPI.Intracomm,
    data_dir,
    model: str = "mlp",
    batch_size: int = 32,
    steps: int = 300,
    warmup: int = 20,
) -> dict[str, Any] | None:
    """Return seconds per round of both on rank 0 (``None`` elsewhere)."""
    torch.set_num_threads(1)
    partition = Partition(data_dir)
    shard = partition.read_shard(comm.Get_rank())
    shape, classes = tuple(partition.manifest.input_shape), len(partition.manifest.classes)

    def stream() -> BatchStream:
        return BatchStream(shard.x, shard.y, batch_size, seed=[0, comm.Get_rank()])

    ours = _time(comm, _fedgossip_step(comm, build_model(model, shape, classes, 0), stream()), steps, warmup)
    theirs = _time(comm, _ddp_step(comm, build_model(model, shape, classes, 0), stream()), steps, warmup)
    if comm.Get_rank() != 0:
        return None
    return {
        "benchmark": "allreduce-vs-ddp",
        "ranks": comm.Get_size(),
        "model": model,
        "batch_size": batch_size,
        "steps": steps,
        "data": str(data_dir),
        "seconds_per_round": ours,
        "reference": "torch DDP (gloo)",
        "reference_seconds_per_round": theirs,
        "ratio_to_reference": ours / theirs,
    }


def _fedgossip_step(
    comm: MPI.Intracomm, model: torch.nn.Module, batches: BatchStream
) -> Callable[[int], None]:
    params = FlatParameters(model)
    optimizer = make_optimizer("sgd", model.parameters(), lr=0.05, momentum=0.9)
    trainer = LocalTrainer(model, params, optimizer, None, batches)
    size = comm.Get_size()
    codec = Codec(NoCompression(), comm.Get_rank(), params.numel)
    context = GossipContext(comm, make_topology("complete", size, 0), codec, Traffic(), 0, np.ones(size))
    algorithm = AllReduce()
    algorithm.setup(context, params.flat)

    def step(index: int) -> None:
        trainer.run(1)
        algorithm.communicate(params.flat, index)

    return step


def _ddp_step(comm: MPI.Intracomm, model: torch.nn.Module, batches: BatchStream) -> Callable[[int], None]:
    port = np.array([_free_port() if comm.Get_rank() == 0 else 0], dtype=np.int64)
    comm.Bcast(port, root=0)
    address = f"tcp://127.0.0.1:{int(port[0])}"
    dist.init_process_group("gloo", init_method=address, rank=comm.Get_rank(), world_size=comm.Get_size())
    wrapped = DistributedDataParallel(model)
    optimizer = make_optimizer("sgd", wrapped.parameters(), lr=0.05, momentum=0.9)

    def step(index: int) -> None:
        x, y = batches.next_batch()
        optimizer.zero_grad()
        cross_entropy(wrapped(x), y).backward()  # DDP averages the gradients inside backward
        optimizer.step()

    return step


def _time(comm: MPI.Intracomm, step: Callable[[int], None], steps: int, warmup: int) -> float:
    for index in range(warmup):
        step(index)
    comm.Barrier()
    start = time.perf_counter()
    for index in range(steps):
        step(warmup + index)
    comm.Barrier()
    slowest = np.empty(1)
    comm.Allreduce(np.array([time.perf_counter() - start]), slowest, op=MPI.MAX)
    return float(slowest[0]) / steps


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
