"""Multi-layer perceptron: flatten, then ReLU hidden layers of equal width."""

from __future__ import annotations

import itertools

from torch import nn

from fedgossip.local.models.base import ModelFactory, check_params, num_features
from fedgossip.specs import Param

__all__ = ["Mlp"]


class Mlp(ModelFactory):
    """Flatten each sample and pass it through ``layers`` ReLU hidden layers of ``hidden`` units."""

    params = (
        Param("hidden", int, 64, "units in each hidden layer", ge=1),
        Param("layers", int, 1, "number of hidden layers", ge=1),
    )

    def __init__(self, hidden: int = 64, layers: int = 1):
        check_params(type(self), hidden=hidden, layers=layers)
        self.hidden = int(hidden)
        self.layers = int(layers)

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        """Return ``Flatten → (Linear → ReLU) × layers → Linear(hidden, num_classes)``."""
        blocks: list[nn.Module] = [nn.Flatten()]
        width = num_features(input_shape)
        for _ in range(self.layers):
            blocks += [nn.Linear(width, self.hidden), nn.ReLU()]
            width = self.hidden
        blocks.append(nn.Linear(width, num_classes))
        return nn.Sequential(*blocks)

    def parameter_count(self, input_shape: tuple[int, ...], num_classes: int) -> int:
        """Return the weights and biases of :meth:`build`'s layers, by arithmetic (any size, at once)."""
        widths = [num_features(input_shape), *[self.hidden] * self.layers, int(num_classes)]
        return sum(inputs * outputs + outputs for inputs, outputs in itertools.pairwise(widths))
