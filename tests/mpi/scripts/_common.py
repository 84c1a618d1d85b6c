"""Shared set-up for the MPI test scripts: a gossip context over random models."""

from __future__ import annotations

import sys

import numpy as np
import torch
from mpi4py import MPI

from fedgossip.algorithms import ALGORITHMS, GossipContext
from fedgossip.comm.codec import Codec
from fedgossip.comm.traffic import Traffic
from fedgossip.compress import COMPRESSORS
from fedgossip.topology.base import make_topology

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()


def context(
    algorithm: str,
    topology: str = "ring",
    count: int = 1000,
    seed: int = 3,
    compressor: str = "none",
    same_start: bool = False,
    counts: np.ndarray | None = None,
):
    """Return (algorithm, context, flat) with a different random model on every rank (or the same one).

    ``algorithm`` is a spec, with the algorithm's parameters: ``dpsgd:gamma=0.1``; ``counts`` are the
    ranks' training samples (default: 100 each).
    """
    torch.set_num_threads(1)
    model_seed = [seed] if same_start else [seed, rank]
    flat = torch.from_numpy(np.random.default_rng(model_seed).normal(size=count).astype(np.float32))
    traffic = Traffic()
    codec = Codec(COMPRESSORS.create(compressor), rank, count, seed)
    counts = np.full(size, 100, dtype=np.int64) if counts is None else counts
    topo = make_topology(topology, size, seed)
    ctx = GossipContext(comm, topo, codec, traffic, seed, counts, same_start=same_start)
    made = ALGORITHMS.create(algorithm)
    made.setup(ctx, flat)
    return made, ctx, flat


def mean_of(flat: torch.Tensor) -> np.ndarray:
    total = flat.numpy().astype(np.float64)
    comm.Allreduce(MPI.IN_PLACE, total, op=MPI.SUM)
    return total / size


def consensus_distance(flat: torch.Tensor) -> float:
    mean = mean_of(flat)
    return comm.allreduce(float(np.sum((flat.numpy() - mean) ** 2)), op=MPI.SUM) / size


def check(condition: bool, message: str) -> None:
    """Fail this rank (and so the job) with ``message``; mpiexec reports a non-zero exit."""
    if not condition:
        print(f"[rank {rank}] FAILED: {message}", file=sys.stderr, flush=True)
        comm.Abort(3)


def step_on_all_batches(model, params, optimizer, schedule, batch) -> None:
    """Take one step of a single-process reference model on every rank's ``batch`` put together.

    The reference runs on every rank; each contributes the mini-batch it trained on this step.
    """
    xb, yb = (np.ascontiguousarray(t.numpy()) for t in batch)
    all_x = np.empty((size * len(xb), *xb.shape[1:]), dtype=xb.dtype)
    all_y = np.empty(size * len(yb), dtype=yb.dtype)
    comm.Allgather(xb, all_x)
    comm.Allgather(yb, all_y)
    params.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(all_x)), torch.from_numpy(all_y))
    loss.backward()
    optimizer.step()
    schedule.step()
