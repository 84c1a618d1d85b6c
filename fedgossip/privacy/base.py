"""The contract of a privacy mechanism (``--dp SPEC``), and the registry of mechanisms.

A mechanism privatizes what leaves a node through one of two hooks, and says
what a round of local work costs in the accountant's terms:

- sample level (``dp-sgd``): every local step's gradient is built from a
  Poisson sample of the shard, clipped per sample and noised
  (:meth:`PrivacyMechanism.make_gradient`);
- node level (``dp-update``): each round's local model update is clipped and
  noised before anything is sent (:meth:`PrivacyMechanism.privatize_update`).

Everything a neighbour receives is computed from privatized values only, so
the node's guarantee follows by post-processing, whatever the compressor and
the algorithm do with it afterwards.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from fedgossip.errors import ConfigError
from fedgossip.registry import Plugin, Registry, check_params
from fedgossip.specs import Param

if TYPE_CHECKING:
    from torch import nn

    from fedgossip.local.flat import FlatParameters

__all__ = ["CLIP", "NOISE", "Charge", "RoundWork", "GradientSource", "PrivacyMechanism", "PRIVACY"]

CLIP = Param("clip", float, 1.0, "L2 norm every contribution is clipped to (C)", gt=0)
NOISE = Param("noise", float, 1.0, "noise multiplier σ: Gaussian noise of std σ·C", ge=0)

# Builds one step's gradient into the flat gradient vector and returns (summed loss, samples used).
GradientSource = Callable[[], tuple[torch.Tensor, int]]


@dataclass(frozen=True)
class RoundWork:
    """What one node did, or may do, in one round: the accountant's view of it."""

    steps: int  # local steps taken (0 when the node sat the round out)
    samples: int  # training samples on the node
    batch_size: int  # expected batch size (--batch-size)


@dataclass(frozen=True)
class Charge:
    """``count`` compositions of the subsampled Gaussian mechanism with sampling rate ``rate``."""

    rate: float
    count: int


class PrivacyMechanism(Plugin, ABC):
    """Privatize what a node sends, and say what each round costs."""

    params = (CLIP, NOISE)
    level: ClassVar[str] = ""  # "sample" (one record is one training sample) or "node" (the whole shard)
    # Why BatchNorm defeats it, said when a model has one (check_model).
    batch_norm_reason: ClassVar[str] = (
        "its running statistics come from raw samples and are never clipped or noised"
    )

    def __init__(self, clip: float = 1.0, noise: float = 1.0):
        if self.level not in _LEVELS:
            # a mechanism of neither level would privatize nothing while ε is still reported
            raise ConfigError(
                f"privacy mechanism {type(self).__name__} must set level to one of {', '.join(_LEVELS)}; "
                "fix the plugin"
            )
        check_params(type(self), clip=clip, noise=noise)  # built directly, not from a spec, too
        self.clip = clip
        self.noise = noise

    @abstractmethod
    def charge(self, work: RoundWork) -> Charge:
        """Return what ``work`` costs (a round the node sat out has ``steps`` 0)."""

    def make_gradient(
        self,
        model: nn.Module,
        flat: FlatParameters,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        generator: torch.Generator,
    ) -> GradientSource | None:
        """Return the private gradient of each local step, or ``None`` to keep the plain batches.

        ``x`` and ``y`` are the whole shard, on the model's device, where ``generator`` lives too.
        """
        return None

    def privatize_update(self, update: torch.Tensor, generator: torch.Generator) -> None:
        """Privatize, in place, the change local training made to the model this round."""

    def check_model(self, model: nn.Module) -> None:
        """Refuse a model the mechanism cannot privatize (raise ``ConfigError`` saying why).

        Every mechanism refuses BatchNorm: its running statistics are buffers computed from raw
        samples, outside the parameters any mechanism clips and noises, and they shape every
        evaluation the node reports. ``batch_norm_reason`` says what else it breaks.
        """
        found = [
            name or type(model).__name__ for name, m in model.named_modules() if isinstance(m, _BatchNorm)
        ]
        if found:
            raise ConfigError(
                f"--dp {self.name} cannot privatize a model with BatchNorm ({', '.join(found)}): "
                f"{self.batch_norm_reason}; use a model without BatchNorm (every built-in model "
                "qualifies: resnet8 uses GroupNorm)"
            )


_LEVELS = ("sample", "node")

PRIVACY: Registry[PrivacyMechanism] = Registry("privacy", PrivacyMechanism)
