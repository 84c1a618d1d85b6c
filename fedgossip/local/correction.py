"""A drift correction added to every local step, steering a node toward the network's direction.

Gradient tracking with local steps (K-GT, :mod:`fedgossip.algorithms.gradient_tracking`) moves each
node by its own step *and* by a correction c_i, the difference between the network's average
direction and the node's, so that K local steps on a skewed shard do not drift toward the shard's
own optimum. The correction is applied after the optimizer's step, outside any momentum: through a
momentum buffer it would be amplified 1/(1 − β) times and the loop that estimates it would overshoot.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["UpdateCorrection"]


class UpdateCorrection:
    """x ← x − η c after each local step, and the sum of the η it was applied with since the last read.

    ``offset`` is c, owned by the algorithm, which updates it in place between rounds; the local
    step loops (one node's, or a batch of nodes') call :meth:`apply` or add their own stacked form,
    and :meth:`take_rate_sum` hands the algorithm Σ η over the round, which normalizes the model's
    change into a direction (K·η for K steps at a constant rate).
    """

    def __init__(self, offset: torch.Tensor):
        self.offset = offset
        self.rate_sum = 0.0  # Σ η of the steps taken since the last take_rate_sum

    def apply(self, flat: torch.Tensor, rate: float) -> None:
        """Move ``flat`` by −``rate``·c, after a local step taken at learning rate ``rate``."""
        flat.sub_(self.offset, alpha=rate)
        self.rate_sum += rate

    def take_rate_sum(self) -> float:
        """Return Σ η since the last call, and start a new sum."""
        total, self.rate_sum = self.rate_sum, 0.0
        return total

    def state_dict(self) -> dict[str, Any]:
        return {"offset": self.offset.detach().cpu().clone(), "rate_sum": self.rate_sum}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state) != {"offset", "rate_sum"}:
            raise ValueError(f"update-correction state has keys {sorted(state)}, expected offset, rate_sum")
        self.offset.copy_(torch.as_tensor(state["offset"]).to(self.offset.device))
        self.rate_sum = float(state["rate_sum"])
