"""The contract every model factory fulfils, the registry of models, and seeded construction."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import nn

from fedgossip.errors import ConfigError
from fedgossip.registry import Plugin, Registry, check_params
from fedgossip.specs import Spec

__all__ = ["ModelFactory", "MODELS", "build_model", "check_params", "image_shape", "num_features"]


class ModelFactory(Plugin, ABC):
    """Build a classifier for inputs of one shape.

    The constructor takes the spec's parameters (``mlp:hidden=128``); :meth:`build`
    makes a fresh float32 module whose forward maps ``[batch, *input_shape]`` to
    ``[batch, num_classes]`` logits. A factory that cannot handle an input shape raises
    ``ConfigError`` naming a model that can. Models must not use BatchNorm or other
    running statistics: gossip averages parameters only, so buffers would diverge.
    """

    @abstractmethod
    def build(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        """Return a new, randomly initialised model (drawing from torch's global generator)."""

    def parameter_count(self, input_shape: tuple[int, ...], num_classes: int) -> int:
        """Return the number of parameters :meth:`build` would make, without allocating them.

        The run checks it against the host's memory before any model exists. This default
        builds the model on torch's ``meta`` device (shapes, no storage); a factory whose
        size follows from its parameters may compute it instead, which stays quick however
        large the model.
        """
        try:
            with torch.device("meta"), torch.random.fork_rng(devices=[]):
                model = self.build(tuple(input_shape), int(num_classes))
        except (OverflowError, TypeError, RuntimeError) as exc:  # a size beyond a 64-bit integer
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"model {self.spec} cannot be built: {first}; choose a smaller model") from None
        return sum(p.numel() for p in model.parameters())


MODELS: Registry[ModelFactory] = Registry("models", ModelFactory)


def build_model(
    model: ModelFactory | str | Spec, input_shape: tuple[int, ...], num_classes: int, seed: int
) -> nn.Module:
    """Build the model ``model`` (the run's factory, or a spec for scripts) with weights drawn from ``seed``.

    Every rank must start from the same weights, so every rank passes the *same* seed
    (the run seed, not seed + rank). The global CPU generator is seeded only inside a
    forked RNG context and restored afterwards, so nothing else's randomness changes.
    The model is built on the CPU; move it to its device before wrapping it in
    :class:`~fedgossip.local.flat.FlatParameters`.
    """
    input_shape = tuple(int(size) for size in input_shape)
    problems = []
    if not input_shape or any(size < 1 for size in input_shape):
        problems.append(f"input shape {list(input_shape)} must have at least one axis, all sizes >= 1")
    if num_classes < 2:
        problems.append(f"a classifier needs at least 2 classes, got {num_classes}")
    if problems:
        raise ConfigError("cannot build a model: " + "; ".join(problems) + "; check the dataset")
    factory = model if isinstance(model, ModelFactory) else MODELS.create(model)
    # devices=[]: build on the CPU only, and leave every CUDA generator untouched.
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(int(seed))
        return factory.build(input_shape, int(num_classes))


def num_features(input_shape: tuple[int, ...]) -> int:
    """Return how many values one sample holds once flattened."""
    return math.prod(input_shape)


def image_shape(model: str, input_shape: tuple[int, ...], min_side: int = 1) -> tuple[int, int, int]:
    """Return ``(channels, height, width)`` or raise ``ConfigError`` for inputs that are not images."""
    if len(input_shape) != 3:
        raise ConfigError(
            f"model {model} needs images shaped [channels, height, width], but the data has input "
            f"shape {list(input_shape)}; use --model mlp or --model logreg for flat features"
        )
    channels, height, width = input_shape
    if min(height, width) < min_side:
        raise ConfigError(
            f"model {model} needs images of at least {min_side}x{min_side} pixels, got {height}x{width}; "
            "use --model mlp for smaller inputs"
        )
    return channels, height, width
