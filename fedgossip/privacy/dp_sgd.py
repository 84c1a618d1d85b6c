"""``dp-sgd``: sample-level DP, every local step built from a Poisson sample, clipped per sample and noised.

DP-SGD (Abadi et al. 2016, Algorithm 1) with Poisson sampling as in Opacus: each
step takes every sample of the shard independently with probability
``q = min(1, batch_size / n)``, clips each sampled gradient to L2 norm ``C``, sums
them, adds ``N(0, (σC)²)`` per coordinate and divides by the expected batch
size ``q·n``. Each step is then one subsampled Gaussian mechanism of rate ``q``
and noise multiplier ``σ``, which is what :meth:`DpSgd.charge` reports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap
from torch.nn.functional import cross_entropy

from fedgossip.errors import ConfigError
from fedgossip.privacy.base import Charge, PrivacyMechanism, RoundWork
from fedgossip.privacy.clipping import clip_rows_

if TYPE_CHECKING:
    from fedgossip.local.flat import FlatParameters

__all__ = ["DpSgd", "PoissonClippedGradient"]


class DpSgd(PrivacyMechanism):
    """Clip every sample's gradient to C and add Gaussian noise of std σ·C to each step (DP-SGD)."""

    level = "sample"
    batch_norm_reason = (
        "BatchNorm normalizes each sample with statistics of the others in its batch, so one sample's "
        "gradient depends on the whole batch and clipping it no longer bounds that sample's influence"
    )

    def charge(self, work: RoundWork) -> Charge:
        """Return one subsampled Gaussian mechanism of rate ``batch_size / samples`` per local step."""
        return Charge(rate=_sampling_rate(work.batch_size, work.samples), count=work.steps)

    def make_gradient(
        self,
        model: nn.Module,
        flat: FlatParameters,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        generator: torch.Generator,
    ) -> PoissonClippedGradient:
        """Return the source of each local step's private gradient over the shard ``x``, ``y``."""
        self.check_model(model)
        n = len(y)
        if n == 0:
            raise ConfigError("dp-sgd needs at least one training sample on every node; this shard is empty")
        rate = _sampling_rate(batch_size, n)
        # the expected batch q·n is batch_size, or n where batch_size exceeds the shard
        return PoissonClippedGradient(
            model, flat, x, y, rate, self.clip, self.noise, min(batch_size, n), generator
        )


class PoissonClippedGradient:
    """Build one DP-SGD step's gradient into ``flat.flat_grad`` on each call.

    Parameters
    ----------
    model, flat
        The model, in the mode the trainer leaves it (train), and its flat parameters.
    x, y
        The whole shard, on the model's device.
    rate
        Probability ``q`` that a sample is in a step's batch.
    clip, noise
        ``C`` and ``σ``: each sample's gradient is clipped to norm ``C``; the sum gets noise of std ``σ·C``.
    batch_size
        The expected batch ``q·n``, which the noised sum is divided by.
    generator
        The mechanism's own generator, on the shard's device, for the sampling and the noise.
    chunk
        Samples whose gradients are held at once: memory grows with ``chunk × parameters``.
    """

    def __init__(
        self,
        model: nn.Module,
        flat: FlatParameters,
        x: torch.Tensor,
        y: torch.Tensor,
        rate: float,
        clip: float,
        noise: float,
        batch_size: int,
        generator: torch.Generator,
        chunk: int = 256,
    ):
        self.model = model
        self.flat = flat
        self.x = x
        self.y = y
        self.rate = rate
        self.clip = clip
        self.noise = noise
        self.batch_size = batch_size
        self.generator = generator
        self.chunk = chunk
        self.last_batch_indices = torch.empty(0, dtype=torch.long, device=x.device)  # for tests
        # One sample's loss as a function of the parameters; vmap maps it over a batch.
        # randomness="different": dropout, if any, draws a different mask for each sample.
        self._per_sample = vmap(
            grad_and_value(self._sample_loss), in_dims=(None, None, 0, 0), randomness="different"
        )

    def __call__(self) -> tuple[torch.Tensor, int]:
        """Write one step's private gradient into ``flat.flat_grad``; return (summed loss, samples used)."""
        indices = self.sample()
        self.last_batch_indices = indices
        total = torch.zeros(self.flat.numel, dtype=torch.float32, device=self.flat.device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.flat.device)
        for start in range(0, len(indices), self.chunk):
            part = indices[start : start + self.chunk]
            rows, losses = self._clipped(self.x[part], self.y[part])
            total += rows.sum(0)
            loss_sum += losses.sum(dtype=torch.float64)
        if self.noise > 0:
            # Abadi et al. 2016, Algorithm 1, "Add noise": N(0, σ²C²I) on the sum of clipped gradients.
            noise = torch.randn(total.shape, generator=self.generator, device=total.device, dtype=total.dtype)
            total.add_(noise, alpha=self.noise * self.clip)
        # Divide by the expected batch, not the realized one: the realized size moves by one with
        # any one sample's presence, and dividing by it would leak that past the noise.
        self.flat.zero_grad()  # also rebinds any .grad a stray optimizer.zero_grad() detached
        self.flat.flat_grad.copy_(total / self.batch_size)
        return loss_sum, len(indices)

    def sample(self) -> torch.Tensor:
        """Draw a Poisson sample: the indices of the shard, each kept with probability ``rate``."""
        # The mechanism's own generator, never the data-order one: the sampling is part of the
        # privacy guarantee, and must neither disturb nor be predictable from the batch order.
        keep = torch.rand(len(self.y), generator=self.generator, device=self.x.device) < self.rate
        return torch.nonzero(keep).squeeze(1)

    def clipped_per_sample(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """Return each sample's gradient clipped to norm ``clip``: rows ``[B, d]`` as in ``flat_grad``."""
        parts = [
            self._clipped(xb[s : s + self.chunk], yb[s : s + self.chunk])[0]
            for s in range(0, len(yb), self.chunk)
        ]
        if not parts:
            return torch.zeros(0, self.flat.numel, dtype=torch.float32, device=self.flat.device)
        return torch.cat(parts)

    def _clipped(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the clipped per-sample gradient rows of one chunk and the samples' losses."""
        # The module's own tensors, detached: functional_call differentiates the copies we pass.
        params = {name: p.detach() for name, p in zip(self.flat.names, self.flat.params, strict=True)}
        trained = set(self.flat.names)
        constants = {name: p.detach() for name, p in self.model.named_parameters() if name not in trained}
        constants.update(self.model.named_buffers())
        grads, losses = self._per_sample(params, constants, xb, yb)
        rows = torch.cat([grads[name].reshape(len(yb), -1) for name in self.flat.names], dim=1)
        clip_rows_(rows, self.clip)  # Algorithm 1, "Clip gradient"
        return rows, losses.detach()

    def _sample_loss(
        self,
        params: dict[str, torch.Tensor],
        constants: dict[str, torch.Tensor],
        x: torch.Tensor,
        y: torch.Tensor,
    ) -> torch.Tensor:
        logits = functional_call(self.model, (params, constants), (x.unsqueeze(0),))
        return cross_entropy(logits, y.unsqueeze(0))


def _sampling_rate(batch_size: int, samples: int) -> float:
    # An empty shard has nothing to sample; charging it as rate 1 overstates the cost, never understates it.
    return min(1.0, batch_size / samples) if samples > 0 else 1.0
