"""``gt``: gradient tracking with local steps (K-GT); compressed, with public copies for both vectors.

Plain D-PSGD on label-skewed shards lets every node walk toward its own shard's optimum between
two averagings; gradient tracking adds to each node's steps a correction c_i that estimates
(network average direction) − (node's own direction), so all nodes walk the average's way.

Update rules, node i, round t, K local steps (Liu, Lin, Koloskova, Stich, "Decentralized Gradient
Tracking with Local Steps", 2023, Algorithm 1, K-GT):

- local steps (line 4): x_i^{t,k+1} = x_i^{t,k} − η (∇F_i(x_i^{t,k}; ξ) + c_i^t); here the local
  optimizer takes its own step and the correction −η c_i^t follows it, outside any momentum
  (:mod:`fedgossip.local.correction`);
- the round's direction (line 6): z_i^t = (x_i^t − x_i^{t,K}) / Σ_k η_k (K·η at a constant rate);
- the model (line 7): x_i^{t+1} = Σ_j W_ij (x_j^t − η_s Σ_k η_k z_j^t), which is the average of the
  models after their local steps for the outer step η_s = 1 (``outer_lr``);
- the correction (line 8): c_i^{t+1} = c_i^t − z_i^t + Σ_j W_ij z_j^t.

With K = 1, plain SGD and η_s = 1 this is DSGT (Pu & Nedić 2021; "NEXT", Di Lorenzo & Scutari
2016) with the tracker y_i = g_i + c_i: y_i^{t+1} = Σ_j W_ij y_j^t + g_i^{t+1} − g_i^t and
x_i^{t+1} = Σ_j W_ij (x_j^t − η y_j^t). Since c_i^0 = 0 and W is doubly stochastic, Σ_i c_i = 0 in
every round, so Σ_i y_i = Σ_i g_i: the trackers' sum is the gradients' sum.

With a lossy compressor both vectors travel as compressed changes against public copies, as in
BEER (Zhao, Li, Richtárik, Chi 2022, Algorithm 1, whose tracker is mixed through its own
compressed copies) with CHOCO's consensus step γ (Koloskova et al. 2019, Algorithm 2):
x_i^{t+1} = h_i + γ Σ_j W_ij (ĥ_j − ĥ_i) for h_i the model after its (outer-scaled) local steps,
and c_i^{t+1} = c_i^t + γ Σ_j W_ij (ẑ_j − ẑ_i). Σ_i c_i = 0 still holds, every copy of ẑ_j being
the same bits. Each round sends two packets per neighbour (the model and the direction): twice
D-PSGD's bytes at the same code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from fedgossip.algorithms.base import Algorithm, check_state
from fedgossip.algorithms.consensus_step import ConsensusStep
from fedgossip.algorithms.context import GossipContext
from fedgossip.algorithms.neighbourhood_pull import NeighbourhoodPull
from fedgossip.comm.conversation import Conversation
from fedgossip.local.correction import UpdateCorrection
from fedgossip.registry import check_params
from fedgossip.specs import Param

if TYPE_CHECKING:
    pass

__all__ = ["GradientTracking"]

# Wire kinds of the two packets of a round, told apart by the receiver.
_MODEL, _DIRECTION = 1, 2


class GradientTracking(ConsensusStep, Algorithm):
    """Local steps corrected toward the network's average direction, which the nodes track by gossip."""

    params = (
        Param(
            "gamma", float, None, "consensus step under a lossy code, by default the compressor's", gt=0, le=1
        ),
        Param("outer_lr", float, 1.0, "K-GT's outer step η_s on the round's model change", gt=0, le=2),
    )

    def __init__(self, gamma: float | None = None, outer_lr: float = 1.0):
        check_params(type(self), outer_lr=outer_lr, **({} if gamma is None else {"gamma": gamma}))
        self.gamma = gamma
        self.outer_lr = outer_lr

    def setup(self, ctx: GossipContext, flat: torch.Tensor) -> None:
        super().setup(ctx, flat)
        self.consensus_step = step = self.checked_consensus_step(ctx.codec.compressor)
        self.correction = UpdateCorrection(torch.zeros_like(flat))  # c_i, applied by the local steps
        self._start = flat.detach().clone()  # x_i^t: the model the round's local steps began from
        self._models = NeighbourhoodPull(ctx, _MODEL, ctx.initial_reference(flat), step)
        self._directions = NeighbourhoodPull(ctx, _DIRECTION, torch.zeros_like(flat), step)

    def conversation(self, flat: torch.Tensor, round_index: int) -> Conversation:
        rate_sum = self.correction.take_rate_sum()
        change = self._start - flat  # Σ_k η_k z_i: the local steps' whole move, correction included
        # a node that took no step this round has no direction of its own to contribute
        direction = change / rate_sum if rate_sum > 0 else torch.zeros_like(change)
        # the pulls only read the vector they get, so the model itself serves for η_s = 1
        moved = flat if self.outer_lr == 1.0 else self._start - change * self.outer_lr
        model_pull = yield from self._models.pull(moved)
        direction_pull = yield from self._directions.pull(direction)
        flat.copy_(moved + model_pull)
        self.correction.offset.add_(direction_pull)  # c_i − z_i + Σ_j W_ij z_j
        self._start.copy_(flat)

    def state_dict(self) -> dict[str, Any]:
        """Return the correction, the round's starting model and both pulls' public copies."""
        return {
            "correction": self.correction.state_dict(),
            "start": self._start.detach().cpu().clone(),
            "model_copies": self._models.state_dict(),
            "direction_copies": self._directions.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state(self.name, state, self.state_dict())
        self.correction.load_state_dict(state["correction"])
        self._start.copy_(torch.as_tensor(state["start"]).to(self._start.device))
        self._models.load_state_dict(state["model_copies"])
        self._directions.load_state_dict(state["direction_copies"])
