"""``allreduce``: local SGD with exact averaging by ``Allreduce`` every round.

With one local step per round this is synchronous data-parallel SGD, the
baseline a user would otherwise get from torch DDP.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from mpi4py import MPI

from fedgossip.algorithms.base import Algorithm
from fedgossip.algorithms.context import GossipContext

__all__ = ["AllReduce"]


class AllReduce(Algorithm):
    """Replace every model by the exact average of all models."""

    graph = "complete"  # every model reaches every rank, whatever --topology says

    def setup(self, ctx: GossipContext, flat: torch.Tensor) -> None:
        super().setup(ctx, flat)
        self.require_lossless(ctx, "it averages exact float32 models with MPI_Allreduce")
        self._host = np.empty(flat.numel(), dtype=np.float32)

    def communicate(self, flat: torch.Tensor, round_index: int) -> None:
        host = flat.detach().cpu().numpy() if flat.device.type == "cpu" else self._host
        if flat.device.type != "cpu":
            host[:] = flat.detach().cpu().numpy()
        with self.ctx.traffic.timed():
            started = time.time()
            self.ctx.comm.Allreduce(MPI.IN_PLACE, [host, MPI.FLOAT], op=MPI.SUM)
            if self.ctx.link is not None:
                self.ctx.hold_collective(started, self.ctx.link.allreduce_time(host.nbytes, self.ctx.size))
        # A collective has no single destination: count what a bandwidth-optimal (ring) allreduce
        # sends from each rank, 2·(n−1)/n of the buffer (reduce-scatter, then allgather).
        moved = 2 * (self.ctx.size - 1) * host.size // self.ctx.size
        self.ctx.traffic.record_collective(4 * moved, moved)
        if flat.device.type != "cpu":
            flat.copy_(torch.from_numpy(host).to(flat.device))
        flat.div_(self.ctx.size)
