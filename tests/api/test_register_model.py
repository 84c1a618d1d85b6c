"""``fg.register_model``: an ``nn.Module`` defined in a script trains under a name."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import fedgossip as fg


class TinyNet(nn.Module):
    """Flatten, then one linear layer: the smallest classifier of the contract."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int):
        super().__init__()
        self.input_shape = input_shape
        self.layer = nn.Linear(math.prod(input_shape), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.flatten(1))


class OtherNet(TinyNet):
    """Another class, to clash with."""


def test_a_registered_module_trains_with_the_data_shape(digits4, tmp_path):
    fg.register_model("api-tiny", TinyNet)
    fg.register_model("api-tiny", TinyNet)  # the same class again: no clash
    run = fg.train(
        fg.TrainConfig(
            data=str(digits4), model="api-tiny", rounds=2, eval_every=1, local_steps=2, out=str(tmp_path)
        )
    )
    assert run.status == "completed"
    # 64 pixels x 10 classes + 10 biases, sent uncompressed as float32 to 2 ring neighbours per round
    per_model = (64 * 10 + 10) * 4
    sent = run.metrics["bytes_sent"][-1]
    assert sent.shape == (4,) and all(2 * 2 * per_model <= s < 2 * 2 * per_model * 1.1 for s in sent)


def test_registering_a_taken_name_or_a_non_class_is_refused():
    fg.register_model("api-clash", TinyNet)
    with pytest.raises(fg.ConfigError, match="two models are called 'api-clash'"):
        fg.register_model("api-clash", OtherNet)
    with pytest.raises(fg.ConfigError, match=r"takes an nn\.Module or ModelFactory subclass"):
        fg.register_model("api-bad", TinyNet((1, 8, 8), 10))
