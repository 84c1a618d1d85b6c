"""A small convolutional network: two conv-ReLU-pool stages and a two-layer classifier."""

from __future__ import annotations

from torch import nn

from fedgossip.local.models.base import ModelFactory, check_params, image_shape
from fedgossip.specs import Param

__all__ = ["Cnn"]


class Cnn(ModelFactory):
    """Classify [C, H, W] images with two 3x3 conv layers, each followed by 2x2 max pooling.

    The classic MNIST-sized network of the federated-learning literature, scaled to the
    input: 8x8 digits leave a 2x2 map after pooling, 28x28 a 7x7 map, 32x32 an 8x8 map.
    Images must be at least 4x4 pixels; flat features are refused (use ``mlp``).
    """

    params = (
        Param("channels", int, 32, "filters of the first conv layer; the second has twice as many", ge=1),
        Param("hidden", int, 128, "units of the dense layer before the output", ge=1),
    )

    def __init__(self, channels: int = 32, hidden: int = 128):
        check_params(type(self), channels=channels, hidden=hidden)
        self.channels = int(channels)
        self.hidden = int(hidden)

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        """Return the network for ``input_shape = (channels, height, width)``."""
        in_channels, height, width = image_shape("cnn", input_shape, min_side=4)
        c1, c2 = self.channels, 2 * self.channels
        # each 2x2 pooling floors odd sides, exactly as nn.MaxPool2d does
        pooled = (height // 2 // 2) * (width // 2 // 2)
        return nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(c2 * pooled, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, num_classes),
        )
