"""``allreduce``: local SGD with exact averaging by ``Allreduce`` every round.

With one local step per round this is synchronous data-parallel SGD, the
baseline a user would otherwise get from torch DDP.
"""

from __future__ import annotations

import numpy as np
import torch

from fedgossip.algorithms.base import Algorithm
from fedgossip.algorithms.context import GossipContext
from fedgossip.comm.conversation import Allreduce, Conversation

__all__ = ["AllReduce"]


class AllReduce(Algorithm):
    """Replace every model by the exact average of all models."""

    graph = "complete"  # every model reaches every node, whatever --topology says
    survives_lost_nodes = True

    def setup(self, ctx: GossipContext, flat: torch.Tensor) -> None:
        super().setup(ctx, flat)
        self.require_lossless(ctx, "it averages exact float32 models with MPI_Allreduce")
        # the nodes still in the run; after a lost rank (--on-failure continue) it is set up again
        self._alive = ctx.alive

    def availability_problem(self, compressor) -> str | None:
        return None

    def conversation(self, flat: torch.Tensor, round_index: int) -> Conversation:
        online = self.ctx.online(round_index)
        if online is not None and not online[self.ctx.node]:
            # Offline: a collective needs every node, so it adds zeros and keeps its own model. (The
            # bytes are counted as if it took part: emulated availability, one real allreduce.)
            yield Allreduce(np.zeros(flat.numel(), dtype=np.float32))
            return
        # The network sums in float64 and counts what a ring allreduce moves (NodeNetwork).
        total = yield Allreduce(flat.detach().cpu().numpy())
        flat.copy_(torch.from_numpy(total).to(flat.device))
        flat.div_(self._alive if online is None else int(online.sum()))  # the online (surviving) nodes' mean
