"""``dp-update``: node-level DP, each round's model update clipped and noised on the node.

DP-FedAvg (McMahan et al. 2018, Algorithm 1) clips each client's update to L2
norm ``C`` and lets the server add ``N(0, (σC)²)`` to their sum. Here the noise
is added on the node itself, to its own clipped update, so that every message it
sends is already private, whatever algorithm, topology and compressor carry it:
each round is one Gaussian mechanism of noise multiplier ``σ`` over the node's
whole shard (one record is one node).
"""

from __future__ import annotations

import torch

from fedgossip.privacy.base import Charge, PrivacyMechanism, RoundWork
from fedgossip.privacy.clipping import clip_norm_

__all__ = ["DpUpdate"]


class DpUpdate(PrivacyMechanism):
    """Clip each round's model update to C and add Gaussian noise of std σ·C before it is sent.

    Each round the node trains costs one Gaussian mechanism, at rate 1. With fedavg's
    client sampling a client pays only for the rounds it is chosen for, but it gets no
    amplification by subsampling: that needs a Poisson sample hidden from the observer,
    while here every rank derives the choice from the run seed, and the server, which
    receives each update on its own, knows who sent it anyway.
    """

    level = "node"

    def charge(self, work: RoundWork) -> Charge:
        """Return one Gaussian mechanism per round with local steps; a round sat out sends no update."""
        return Charge(rate=1.0, count=1 if work.steps > 0 else 0)

    def privatize_update(self, update: torch.Tensor, generator: torch.Generator) -> None:
        """Clip ``update`` to norm ``clip`` and add ``N(0, (noise·clip)²)`` to each value, in place.

        ``generator`` is the mechanism's own, on ``update``'s device. Its seed must differ
        across ranks and stay secret: a neighbour that could replay it could subtract the noise.
        """
        clip_norm_(update, self.clip)
        if self.noise > 0:
            noise = torch.randn(update.shape, generator=generator, device=update.device, dtype=update.dtype)
            update.add_(noise, alpha=self.noise * self.clip)
