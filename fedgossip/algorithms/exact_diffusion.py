"""``d2``: D² / exact diffusion, decentralized SGD whose fixed point ignores how skewed the shards are.

D-PSGD's nodes settle where their local gradients balance the pull of their neighbours, which on
label-skewed shards is away from the global optimum. D² (Tang, Lian, Yan, Zhang, Liu, "D²:
Decentralized Training over Decentralized Data", ICML 2018, Algorithm 1) corrects each step by the
previous one:

    x^{t+1} = W (2 x^t − x^{t−1} − η g^t + η g^{t−1}),   x^1 = W (x^0 − η g^0)     (Algorithm 1, line 6)

With K local steps per round, −η g^t becomes the round's local move u^t = p^t − x^t (p^t the model
after the local steps), so a node mixes h^t = p^t + (x^t − p^{t−1}) and keeps one vector, the
*drift* x^t − p^{t−1} (0 in the first round). K = 1 with plain SGD is the paper's rule exactly.

D² needs the smallest eigenvalue of W above −1/3 (the paper's Assumption 1.4); the Metropolis
matrix of an even ring sits exactly at −1/3, where one mode never decays. So by default the
mixing is exact diffusion's (Yuan, Ying, Zhao, Sayed 2019): W̄ = (I + W)/2, whose eigenvalues are
all ≥ 0 on every graph. ``lazy=false`` mixes with W itself, refused where the bound fails.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fedgossip.algorithms.base import Algorithm, check_state
from fedgossip.algorithms.context import GossipContext
from fedgossip.algorithms.neighbourhood_pull import NeighbourhoodPull
from fedgossip.comm.conversation import Conversation
from fedgossip.errors import ConfigError
from fedgossip.registry import check_params
from fedgossip.specs import Param
from fedgossip.topology.base import Topology
from fedgossip.topology.mixing import DENSE_MAX_NODES, metropolis_weights

__all__ = ["ExactDiffusion"]

_MODEL = 1  # the wire kind of its one packet a round
_EIGENVALUE_BOUND = -1.0 / 3.0


class ExactDiffusion(Algorithm):
    """Mix the model after local steps plus last round's drift: x ← W̄ (p + x − p_prev)."""

    params = (
        Param("lazy", bool, True, "mix with (I + W)/2, which meets D²'s eigenvalue bound on any graph"),
    )

    def __init__(self, lazy: bool = True):
        check_params(type(self), lazy=lazy)
        self.lazy = lazy

    def setup(self, ctx: GossipContext, flat: torch.Tensor) -> None:
        super().setup(ctx, flat)
        self.require_lossless(ctx, "D² mixes whole models, whose compression errors it would accumulate")
        if not self.lazy:
            _check_eigenvalues(ctx.topology, ctx.shared)
        self._drift = torch.zeros_like(flat)  # x^t − p^{t−1}
        self._models = NeighbourhoodPull(ctx, _MODEL, flat, None)

    def conversation(self, flat: torch.Tensor, round_index: int) -> Conversation:
        mixed = flat + self._drift  # h^t = p^t + x^t − p^{t−1}, p^t being flat after the local steps
        pull = yield from self._models.pull(mixed)
        # W h = h + pull; the lazy (I + W)/2 moves half as far
        mixed.add_(pull, alpha=0.5 if self.lazy else 1.0)
        torch.sub(mixed, flat, out=self._drift)  # x^{t+1} − p^t, before flat becomes x^{t+1}
        flat.copy_(mixed)

    def state_dict(self) -> dict[str, Any]:
        """Return the drift x^t − p^{t−1}, D²'s memory of the previous round."""
        return {"drift": self._drift.detach().cpu().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state(self.name, state, self.state_dict())
        self._drift.copy_(torch.as_tensor(state["drift"]).to(self._drift.device))


def _check_eigenvalues(topology: Topology, shared: dict[str, Any]) -> None:
    """Refuse ``lazy=false`` on a graph whose Metropolis matrix has an eigenvalue ≤ −1/3 (once per rank)."""
    if "d2_smallest_eigenvalue" not in shared:
        smallest = None
        if topology.num_nodes <= DENSE_MAX_NODES:
            smallest = float(np.linalg.eigvalsh(metropolis_weights(topology))[0])
        shared["d2_smallest_eigenvalue"] = smallest
    smallest = shared["d2_smallest_eigenvalue"]
    if smallest is not None and smallest <= _EIGENVALUE_BOUND + 1e-9:
        raise ConfigError(
            f"d2:lazy=false needs the mixing matrix's smallest eigenvalue above -1/3, but this graph's is "
            f"{smallest:.4f} (one mode would never decay); use the default d2 (lazy mixing) or another graph"
        )
