"""A user's own ``nn.Module`` class as the run's model: ``--model FILE.py:Class[:key=value,...]``.

The constructor contract is the built-in models' one (:meth:`ModelFactory.build`)::

    class Net(nn.Module):
        def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int = 64): ...

        def forward(self, x):  # x: float32 [batch, *input_shape] -> logits [batch, num_classes]

``input_shape`` is one sample's shape (``(1, 8, 8)`` for digits, ``(d,)`` for tables) and
``num_classes`` the data's class count, both passed positionally; the spec's ``key=value``
pairs follow as keyword arguments, converted by the parameter's annotation (``int``,
``float``, ``bool``, ``str``; without one, a number if the text reads as one). Weights are
drawn from torch's global generator, which the run seeds alike on every rank. No
BatchNorm or other running statistics: gossip averages parameters, not buffers.

Every rank imports the file itself (:mod:`fedgossip.user_code`); the run records its SHA-256.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from fedgossip.errors import ConfigError
from fedgossip.local.models.base import MODELS, ModelFactory
from fedgossip.settings.model_spec import UserModelSpec
from fedgossip.specs import Spec, parse_bool
from fedgossip.user_code import first_line, load_user_code

__all__ = ["UserModel", "resolve_model"]

_OPTION = "--model"
_CHECK_BATCH = 2  # samples of the forward pass that checks the output shape


def resolve_model(spec: Spec | UserModelSpec) -> ModelFactory:
    """Return the factory of ``--model``: a registered model, or the user's class."""
    return UserModel(spec) if isinstance(spec, UserModelSpec) else MODELS.create(spec)


class UserModel(ModelFactory):
    """Build the user's ``nn.Module`` class with the data's input shape and class count."""

    def __init__(self, spec: UserModelSpec):
        code = load_user_code(spec.target, _OPTION)
        self.sha256 = code.sha256  # of the source file; None for a module without one
        self.target = code.target  # absolute, so a resume from elsewhere finds the same file
        self.spec = str(UserModelSpec(code.target, spec.class_name, spec.args))
        cls = code.attribute(spec.class_name, "class")
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            what = "a class" if isinstance(cls, type) else _kind(cls)
            raise ConfigError(
                f"{_OPTION} {self.spec}: {spec.class_name} is {what} but not a subclass of torch.nn.Module; "
                "name an nn.Module subclass"
            )
        self.cls = cls
        self.kwargs = _keyword_arguments(cls, spec.args, self.spec)

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        """Return ``Class(input_shape, num_classes, **args)``, checked by one forward pass."""
        try:
            model = self.cls(tuple(input_shape), int(num_classes), **self.kwargs)
        except Exception as exc:
            raise ConfigError(
                f"{_OPTION} {self.spec}: {self.cls.__name__}(input_shape={tuple(input_shape)}, "
                f"num_classes={num_classes}{_shown(self.kwargs)}) raised {first_line(exc)}"
            ) from exc  # the user's traceback, for --debug
        _check_module(model, self.spec, tuple(input_shape), int(num_classes))
        return model


def _keyword_arguments(cls: type, args: dict[str, str], spec: str) -> dict[str, object]:
    """Convert the spec's texts by the constructor's annotations; refuse what it cannot take."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return dict(args)
    parameters = signature.parameters
    converted, problems = {}, []
    for key, text in args.items():
        try:
            converted[key] = _convert(text, parameters.get(key))
        except ValueError as exc:
            problems.append(f"{key}={text} {exc}")
    if problems:  # all of them at once
        raise ConfigError(f"{_OPTION} {spec}: " + "; ".join(problems))
    try:
        signature.bind((1,), 2, **converted)  # the contract's two positional arguments, then the spec's
    except TypeError as exc:
        takes = ", ".join(parameters)
        raise ConfigError(
            f"{_OPTION} {spec}: {cls.__name__}({takes}) cannot be called as "
            f"{cls.__name__}(input_shape, num_classes{_shown(converted)}): {exc}; the constructor must take "
            "input_shape and num_classes first, then the spec's key=value arguments"
        ) from None
    return converted


def _convert(text: str, parameter: inspect.Parameter | None) -> object:
    """Return ``text`` as the parameter's annotated type, else as a number if it reads as one."""
    kind = None if parameter is None else parameter.annotation
    name = kind if isinstance(kind, str) else getattr(kind, "__name__", None)
    try:
        if name == "bool":
            return parse_bool(text)
        if name in ("int", "float"):
            return int(text) if name == "int" else float(text)
    except ValueError:
        raise ValueError(f"is not a valid {name} (the constructor's annotation)") from None
    if name == "str":
        return text
    for reader in (int, float):
        try:
            return reader(text)
        except ValueError:
            pass
    return text


def _check_module(model: object, spec: str, input_shape: tuple[int, ...], num_classes: int) -> None:
    """Refuse a model without float32 parameters, with running statistics, or with wrongly shaped logits."""
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{_OPTION} {spec}: the class built {_kind(model)}, not a torch.nn.Module")
    parameters = list(model.parameters())
    if not parameters:
        raise ConfigError(f"{_OPTION} {spec}: the model has no parameters to train")
    wrong = sorted({str(p.dtype) for p in parameters if p.dtype != torch.float32})
    if wrong:
        raise ConfigError(f"{_OPTION} {spec}: parameters must be float32, some are {', '.join(wrong)}")
    norms = [type(m).__name__ for m in model.modules() if getattr(m, "track_running_stats", False)]
    if norms:
        raise ConfigError(
            f"{_OPTION} {spec}: {norms[0]} keeps running statistics, which gossip does not average; "
            "use GroupNorm or LayerNorm, or track_running_stats=False"
        )
    device = parameters[0].device
    x = torch.zeros((_CHECK_BATCH, *input_shape), dtype=torch.float32, device=device)
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as exc:
        if isinstance(exc, NotImplementedError) and device.type == "meta":
            return  # an operation without a meta kernel: the real build checks on the CPU
        raise ConfigError(
            f"{_OPTION} {spec}: a forward pass on a batch of shape {[_CHECK_BATCH, *input_shape]} raised "
            f"{first_line(exc)}"
        ) from exc
    expected = (_CHECK_BATCH, num_classes)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        got = list(out.shape) if isinstance(out, torch.Tensor) else _kind(out)
        raise ConfigError(
            f"{_OPTION} {spec}: forward must return logits of shape [batch, num_classes] = {list(expected)} "
            f"for input [batch, *input_shape] = {[_CHECK_BATCH, *input_shape]}, got {got}"
        )


def _kind(value: object) -> str:
    return f"a {type(value).__name__}"


def _shown(kwargs: dict[str, object]) -> str:
    return "".join(f", {key}={value!r}" for key, value in kwargs.items())
