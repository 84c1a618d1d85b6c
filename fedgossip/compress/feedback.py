"""Error feedback: remember what compression dropped and send it later (Seide et al. 2014).

A biased compressor (top-k, sign) loses the same part of a vector round after
round; error feedback adds the residual of the previous message to the next
one, so every coordinate eventually gets through (Karimireddy et al. 2019,
"Error Feedback Fixes SignSGD", Algorithm 2). The invariant, tested:
``decoded + new_residual == input + old_residual``.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["ErrorFeedback"]


class ErrorFeedback:
    """Residual memory ``e`` of one outgoing stream of compressed vectors.

    Use as ``sent = ef.corrected(x)``, compress and decode ``sent`` into
    ``decoded``, then ``ef.absorb(sent, decoded)``. Disabled, it passes vectors
    through and keeps no memory (unbiased compressors need none).
    """

    def __init__(self, count: int, enabled: bool = True):
        self.enabled = enabled
        self.residual = torch.zeros(count if enabled else 0, dtype=torch.float32)

    def corrected(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x + e``, the vector to compress instead of ``x``."""
        if not self.enabled:
            return x
        return x + self.residual.to(x.device)

    def absorb(self, sent: torch.Tensor, decoded: torch.Tensor) -> None:
        """Keep ``e ← sent − decoded``: what the receiver did not get this time."""
        if self.enabled:
            torch.sub(sent.to(self.residual.device), decoded.to(self.residual.device), out=self.residual)

    def state_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "residual": self.residual.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = {"enabled", "residual"} - set(state)
        if missing:
            raise KeyError(f"error-feedback state lacks {sorted(missing)}")
        if state["enabled"] != self.enabled or state["residual"].shape != self.residual.shape:
            raise ValueError(
                f"error-feedback state is for {tuple(state['residual'].shape)} values "
                f"(enabled={state['enabled']}), this run has {tuple(self.residual.shape)} "
                f"(enabled={self.enabled})"
            )
        self.residual.copy_(state["residual"])
