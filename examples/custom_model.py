"""Your own model, no packaging: define an ``nn.Module`` here, register it, train it.

    python examples/custom_model.py OUT [--rounds 3]

The constructor contract: the class is built as ``Model(input_shape, num_classes)``,
with the shape of one sample (digits: ``(1, 8, 8)``) and the number of classes;
its forward maps ``[batch, *input_shape]`` to ``[batch, num_classes]`` logits. No
BatchNorm or other buffers: gossip averages parameters only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

import fedgossip as fg


class SmallConvNet(nn.Module):
    """One 3x3 convolution with 8 channels, then a linear classifier over its feature maps."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int):
        super().__init__()
        channels, height, width = input_shape  # images: [channels, height, width]
        self.features = nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.Flatten())
        self.classifier = nn.Linear(8 * height * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the partition and the run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    fg.register_model("small-conv", SmallConvNet)
    partition = fg.create_partition("digits", nodes=4, scheme="iid", out=args.out / "data")
    config = fg.TrainConfig(
        data=str(partition.path),
        model="small-conv",
        rounds=args.rounds,
        eval_every=1,
        local_steps=5,
        out=str(args.out / "results"),
        name="small-conv",
    )
    run = fg.train(config)
    accuracy = run.metrics["test_accuracy"]  # [evaluations, nodes]
    print(f"{run.name}: {run.status}; mean test accuracy by round {accuracy.mean(axis=1).round(3).tolist()}")


if __name__ == "__main__":
    main()
