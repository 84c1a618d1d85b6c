"""Your own model, without packaging: register a class under a name that ``model=`` then takes."""

from __future__ import annotations

from torch import nn

from fedgossip.errors import ConfigError
from fedgossip.local.models.base import MODELS, ModelFactory

__all__ = ["register_model"]

# One factory per module class, so registering the same class twice is no clash.
_FACTORIES: dict[type[nn.Module], type[ModelFactory]] = {}


def register_model(name: str, model: type[nn.Module] | type[ModelFactory]) -> None:
    """Make ``model`` available as ``TrainConfig(model=name)`` in this process.

    Parameters
    ----------
    name
        The name the config uses, e.g. ``"tiny-cnn"``; one taken by another model is refused.
    model
        An ``nn.Module`` class built as ``model(input_shape, num_classes)`` (the shape of
        one sample, e.g. ``(1, 8, 8)``, and the number of classes), whose forward maps
        ``[batch, *input_shape]`` to ``[batch, num_classes]`` logits; or a
        ``ModelFactory`` subclass, for a model with spec parameters (``name:hidden=32``).
        No BatchNorm or other buffers: gossip averages parameters only.

    Notes
    -----
    The registry lives in the process: under ``mpiexec`` every rank runs the script,
    so every rank registers it. ``fedgossip train`` in a shell does not see it.

    Raises
    ------
    ConfigError
        ``model`` is neither kind of class, or ``name`` belongs to another model.
    """
    if isinstance(model, type) and issubclass(model, ModelFactory):
        factory = model
    elif isinstance(model, type) and issubclass(model, nn.Module):
        factory = _FACTORIES.get(model) or _FACTORIES.setdefault(model, _module_factory(model))
    else:
        raise ConfigError(
            f"register_model({name!r}, ...) takes an nn.Module or ModelFactory subclass, got {model!r}"
        )
    MODELS.register(name, factory, provider=f"{model.__module__}.{model.__qualname__}")


def _module_factory(module: type[nn.Module]) -> type[ModelFactory]:
    """Return a parameterless factory that builds ``module(input_shape, num_classes)``."""

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        return module(tuple(input_shape), int(num_classes))

    summary = (module.__doc__ or f"{module.__qualname__}, registered at run time").strip().splitlines()[0]
    return type(f"{module.__name__}Factory", (ModelFactory,), {"__doc__": summary, "build": build})
