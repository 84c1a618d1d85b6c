"""``comp-ams``: compressed gradients with error feedback, averaged, then one AMSGrad step everywhere.

COMP-AMS (Li, Karimi & Li, "On Distributed Adaptive Optimization with Gradient
Compression", ICLR 2022, Algorithm 2). At every local step each worker sends
``C(g_i + e_i)`` and keeps ``e_i ← g_i + e_i − C(g_i + e_i)``; the mean of the
compressed messages comes back and every worker applies the same AMSGrad
update to its own copy. The models never travel, yet stay bit-identical.

Two choices differ from the paper's pseudo-code, on purpose: the step is
torch's AMSGrad (bias-corrected, ε outside the square root), so that with no
compression comp-ams is exactly the AMSGrad a user runs in one process; and
unbiased compressors (qsgd, stochastic rounding, random-k) run without the
residual (e = 0), as fedavg does, since they need none to converge.

How the mean is formed: an ``Allgather`` of the framed packets, and every rank
decodes all of them and adds them up in rank order. We chose it over a star
(rank 0 relaying the mean) because

- the mean of n compressed messages is denser than any one of them (the union
  of n top-k supports, or a sum of n sign vectors), so a star's downlink would
  need a second compressor and a second residual, a different algorithm;
  gathered, every message stays compressed end to end, in both directions;
- every rank adds the same decoded vectors in the same order, so the models
  stay bit-identical without trusting the summation order of an MPI reduction;
- no rank is set aside as a server: all n train.

The price: each worker receives the n − 1 other packets (and an allgather sends
as much), where a ring allreduce of the dense gradient moves 2·(n−1)/n·4d
bytes. Gathering stays cheaper while n < 8d / packet size: below about 100
workers for top-k 1%, about 60 for sign; uncompressed, it costs n/2 times the
allreduce. Each rank also holds n packets and decodes each into a dense vector
every step. Bytes are counted as the allgather moves them: this rank's packet
to each of the n − 1 others, and theirs to it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from fedgossip.algorithms.base import Algorithm, check_state
from fedgossip.algorithms.context import GossipContext
from fedgossip.comm.conversation import Allgather, Conversation
from fedgossip.compress.feedback import ErrorFeedback
from fedgossip.compress.wire import HEADER_SIZE
from fedgossip.errors import ConfigError

if TYPE_CHECKING:
    from fedgossip.settings.config import TrainConfig

__all__ = ["CompAMS"]


class CompAMS(Algorithm):
    """Average error-feedback-compressed gradients; every rank applies the same AMSGrad step."""

    graph = "complete"  # every packet reaches every rank, whatever --topology says
    exchanges_gradients = True
    # A constant rate, as AMSGrad is usually run: one decaying to 0 cuts off what error feedback still owes.
    config_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "amsgrad",
        "lr": 0.001,
        "lr_schedule": "constant",
    }

    def check_config(self, config: TrainConfig) -> None:
        problems = []
        if config.specs.optimizer.name != "amsgrad":
            problems.append(
                f"comp-ams applies AMSGrad to the averaged gradient, not {config.optimizer}; leave the "
                "optimizer out (--optimizer or the TOML file) or give amsgrad, e.g. amsgrad:beta2=0.99"
            )
        steps = config.specs.local_steps
        if config.local_epochs is not None or (steps is not None and steps.fixed is None):
            problems.append(
                "comp-ams exchanges a gradient at every step, so every rank must take the same "
                "number of steps per round: give a fixed --local-steps, not --local-epochs or a random count"
            )
        if problems:
            raise ConfigError("; ".join(problems))

    def setup(self, ctx: GossipContext, flat: torch.Tensor) -> None:
        super().setup(ctx, flat)
        count = flat.numel()
        compressor = ctx.codec.compressor
        # Biased compressors (top-k, sign) need the residual; unbiased ones converge without it.
        self.feedback = ErrorFeedback(count, enabled=not (compressor.lossless or compressor.unbiased))
        self._decoded = torch.empty(count, dtype=torch.float32)
        self.steps = 0  # the sequence number of the next packets, the same on every node

    def conversation(self, flat: torch.Tensor, round_index: int) -> Conversation:
        """Nothing to mix: the models never diverge, every step already used the common gradient."""
        return
        yield  # a generator that asks for nothing

    def state_dict(self) -> dict[str, Any]:
        """Return the residual and the packets' sequence counter; AMSGrad's moments are the optimizer's."""
        return {"feedback": self.feedback.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the residual and the sequence counter, after ``setup`` with the same settings."""
        check_state(self.name, state, self.state_dict())
        self.feedback.load_state_dict(state["feedback"])
        self.steps = int(state["steps"])

    def gradient_conversation(self, grad: torch.Tensor) -> Conversation:
        self.steps += 1
        ctx, codec = self.ctx, self.ctx.codec
        sent = self.feedback.corrected(grad.detach().cpu())
        packet, values = codec.pack(sent, sequence=self.steps)
        if packet.size != codec.max_packet:
            # nbytes is exact for every compressor, so all nodes' packets fill Allgather's equal blocks
            raise RuntimeError(
                f"{codec.compressor.name} framed {packet.size} bytes, expected {codec.max_packet}"
            )
        started = time.time()
        gathered = yield Allgather(packet)
        if ctx.link is not None:
            ctx.hold_collective(started, ctx.link.allgather_time(packet.size, ctx.size))
        own = codec.unpack(gathered[ctx.node], ctx.node, self.steps, out=self._decoded)
        self.feedback.absorb(sent, own)
        others = ctx.size - 1
        ctx.traffic.bytes_sent += others * packet.size  # this node's packet reaches every other node
        ctx.traffic.bytes_received += others * packet.size
        ctx.traffic.messages_sent += others
        ctx.traffic.fp32_bytes_sent += others * (HEADER_SIZE + 4 * values)
        grad.copy_(self._mean(gathered))

    def _mean(self, gathered: np.ndarray) -> torch.Tensor:
        """Return the mean of every node's decoded packet, summed in node order: bit-identical everywhere.

        The co-hosted nodes of a rank all gathered the same packets: the first to ask decodes them.
        """
        memo = self.ctx.shared.get("comp-ams.mean")
        if memo is not None and memo[0] == self.steps and memo[1] is gathered:
            return memo[2]
        codec = self.ctx.codec
        mean = torch.zeros(self._decoded.numel(), dtype=torch.float32)
        for node in range(self.ctx.size):
            mean.add_(codec.unpack(gathered[node], node, self.steps, out=self._decoded))
        mean.div_(self.ctx.size)
        self.ctx.shared["comp-ams.mean"] = (self.steps, gathered, mean)
        return mean
