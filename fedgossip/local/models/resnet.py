"""ResNet-8: a convolutional stem and three stages of one basic residual block, with GroupNorm.

GroupNorm, not BatchNorm, on purpose. Gossip averages parameters only; BatchNorm's
running mean and variance are buffers, which would never be exchanged and would
silently drift apart between nodes (each estimating the statistics of its own non-IID
shard), so the averaged model would be evaluated with statistics no node trained with.
DP-SGD refuses BatchNorm too, since it mixes samples within a batch and breaks
per-sample gradients. GroupNorm normalises within each sample and has no buffers.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fedgossip.local.models.base import ModelFactory, check_params, image_shape
from fedgossip.specs import Param

__all__ = ["ResNet8", "BasicBlock"]

_GROUPS = 8  # groups per GroupNorm where the channel count allows (Wu & He 2018 use 32 on wider nets)


def _norm(channels: int) -> nn.GroupNorm:
    # the largest divisor of channels up to _GROUPS, so any width works
    return nn.GroupNorm(math.gcd(channels, _GROUPS), channels)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (He et al. 2016); a 1x1 conv shortcut where shapes change."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.norm1 = _norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = _norm(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), _norm(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet8(ModelFactory):
    """Classify [C, H, W] images with a ResNet of 8 weighted layers and GroupNorm (no BatchNorm).

    Stages have ``width``, ``2·width`` and ``4·width`` channels; the last two halve the
    spatial size. Global average pooling makes any image size of at least 1x1 work.
    """

    params = (Param("width", int, 16, "channels of the first stage; later stages double it", ge=1),)

    def __init__(self, width: int = 16):
        check_params(type(self), width=width)
        self.width = int(width)

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        """Return the network for ``input_shape = (channels, height, width)``."""
        in_channels, _, _ = image_shape("resnet8", input_shape)
        w = self.width
        return nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1, bias=False),
            _norm(w),
            nn.ReLU(),
            BasicBlock(w, w, stride=1),
            BasicBlock(w, 2 * w, stride=2),
            BasicBlock(2 * w, 4 * w, stride=2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4 * w, num_classes),
        )
