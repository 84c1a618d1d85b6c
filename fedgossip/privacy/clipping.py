"""Clipping to an L2 norm: the one rule both DP mechanisms use.

A vector ``v`` is scaled by ``min(1, C / (‖v‖₂ + 1e-6))``, Opacus's rule: the
``1e-6`` keeps the factor finite at ``v = 0`` and the clipped norm below ``C``,
and a vector already shorter than ``C − 1e-6`` is left exactly as it was.
"""

from __future__ import annotations

import torch

__all__ = ["clip_norm_", "clip_rows_"]

_EPS = 1e-6


def clip_norm_(vector: torch.Tensor, clip: float) -> float:
    """Scale ``vector`` in place to L2 norm at most ``clip``; return its norm before clipping."""
    norm = float(torch.linalg.vector_norm(vector))
    if norm + _EPS > clip:
        vector.mul_(clip / (norm + _EPS))
    return norm


def clip_rows_(rows: torch.Tensor, clip: float) -> torch.Tensor:
    """Scale each row of ``rows`` ``[B, d]`` in place to L2 norm at most ``clip``; return the norms before."""
    norms = torch.linalg.vector_norm(rows, dim=1)
    # a factor of exactly 1 leaves a short row bit for bit unchanged
    rows.mul_((clip / (norms + _EPS)).clamp(max=1.0).unsqueeze(1))
    return norms
