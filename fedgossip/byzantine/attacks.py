"""What a faulty or malicious node sends instead of its model (``--attack``), and the registry of attacks.

An attacker speaks the protocol — valid packets, valid sequence numbers, through
the run's codec, so under compression it sends Q(forged − its reference) — but the
vector it advertises is the attack's :meth:`Attack.forge`. Attacks are not
omniscient: what they know of the honest nodes is what the attacker itself last
received from its neighbours (their models, or its public copies of them), as a
real device would. The attacks are those ClippedGossip is evaluated against
(He, Karimireddy & Jaggi 2022, §6 and their code): sign flip ("bit flipping"),
Gaussian noise, ALIE (Baruch et al. 2019), IPM (Xie et al. 2020), label flip,
and the dissensus attack of the ClippedGossip paper (its eq. 9).
"""

from __future__ import annotations

from abc import ABC
from typing import ClassVar

import torch

from fedgossip.registry import Plugin, Registry, check_params
from fedgossip.specs import Param

__all__ = ["Attack", "ATTACKS", "mean_and_std"]


class Attack(Plugin, ABC):
    """Decide what an attacking node advertises to each neighbour in place of its model."""

    flips_labels: ClassVar[bool] = False  # it trains on flipped labels (and then sends honestly)

    def forge(
        self,
        own: torch.Tensor,
        seen: list[torch.Tensor],
        receiver: torch.Tensor | None,
        noise: torch.Generator,
    ) -> torch.Tensor:
        """Return the vector to send in place of ``own`` (the attacker's honestly trained model).

        ``seen``: the honest neighbours' vectors as the attacker last received them (may be
        empty in the first round); ``receiver``: what it last received from the node this
        vector goes to (``None`` if nothing yet); ``noise``: the attacker's own seeded stream.
        """
        return own.clone()


def mean_and_std(seen: list[torch.Tensor], fallback: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the coordinate-wise mean and standard deviation of ``seen`` (``fallback`` and 0 if empty)."""
    if not seen:
        return fallback, torch.zeros_like(fallback)
    stacked = torch.stack(seen)
    std = stacked.std(dim=0, unbiased=False) if len(seen) > 1 else torch.zeros_like(fallback)
    return stacked.mean(dim=0), std


class SignFlip(Attack):
    """Send the model with its sign flipped and scaled: −S·x (ClippedGossip's bit-flipping attack)."""

    name = "sign-flip"
    params = (Param("scale", float, 1.0, "S in −S·x", gt=0),)

    def __init__(self, scale: float = 1.0):
        check_params(type(self), scale=scale)
        self.scale = scale

    def forge(self, own, seen, receiver, noise):
        return own * -self.scale


class Gaussian(Attack):
    """Send pure noise: every value drawn from N(0, std²)."""

    name = "gaussian"
    params = (Param("std", float, 1.0, "standard deviation of the noise", gt=0),)

    def __init__(self, std: float = 1.0):
        check_params(type(self), std=std)
        self.std = std

    def forge(self, own, seen, receiver, noise):
        return torch.randn(own.shape, generator=noise, dtype=own.dtype).to(own.device) * self.std


class Alie(Attack):
    """A little is enough (Baruch et al. 2019): μ − z·σ of the honest neighbours' models, per coordinate."""

    name = "alie"
    params = (Param("z", float, 1.0, "how many standard deviations away from the mean", gt=0),)

    def __init__(self, z: float = 1.0):
        check_params(type(self), z=z)
        self.z = z

    def forge(self, own, seen, receiver, noise):
        mean, std = mean_and_std(seen, own)
        return mean - self.z * std


class Ipm(Attack):
    """Inner product manipulation (Xie et al. 2020): −ε times the honest neighbours' mean model."""

    name = "ipm"
    params = (Param("eps", float, 0.1, "ε in −ε·μ", gt=0),)

    def __init__(self, eps: float = 0.1):
        check_params(type(self), eps=eps)
        self.eps = eps

    def forge(self, own, seen, receiver, noise):
        mean, _ = mean_and_std(seen, own)
        return mean * -self.eps


class LabelFlip(Attack):
    """Train on flipped labels (y → C − 1 − y) and send the resulting model honestly."""

    name = "label-flip"
    flips_labels = True


class Dissensus(Attack):
    """Push each receiver away from its honest neighbours (He et al. 2022, eq. 9), per receiver.

    The paper's attacker sends x_i − ε Σ_k W_ik (x_k − x_i) / Σ_b W_ib to honest node i. Not
    omniscient, it estimates x_i by what i last sent it and i's honest neighbourhood by the
    mean of the honest models it received itself: x_i − ε (μ − x_i).
    """

    name = "dissensus"
    params = (Param("eps", float, 1.5, "ε: how far past the receiver, against its neighbours", gt=0),)

    def __init__(self, eps: float = 1.5):
        check_params(type(self), eps=eps)
        self.eps = eps

    def forge(self, own, seen, receiver, noise):
        target = own if receiver is None else receiver
        mean, _ = mean_and_std(seen, target)
        return target - self.eps * (mean - target)


ATTACKS: Registry[Attack] = Registry("attacks", Attack)
