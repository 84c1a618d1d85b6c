"""Multinomial logistic regression: flatten, then one linear layer."""

from __future__ import annotations

from torch import nn

from fedgossip.local.models.base import ModelFactory, num_features

__all__ = ["LogReg"]


class LogReg(ModelFactory):
    """Flatten each sample and map it linearly to class logits (convex; a sanity baseline)."""

    params = ()

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        """Return ``Flatten → Linear(features, num_classes)``."""
        return nn.Sequential(nn.Flatten(), nn.Linear(num_features(input_shape), num_classes))
