"""Many models of one architecture called as one: what they must share, and the functional call itself.

Batched training (:mod:`fedgossip.local.batched`) and batched evaluation
(:mod:`fedgossip.local.batched_evaluation`) stack the nodes' flat parameter vectors into the rows
of one ``[nodes, numel]`` matrix and, under ``torch.func.vmap``, call one parameterless copy of a
node's module (a template on the meta device) with each row's parameters. Each row's output is
then that node's own only if every node's model is the template but for its parameter values:
the same modules and parameter shapes, no buffers (the template has no node's own), every
parameter in the flat vector (a frozen one would be missing), and no hooks (a functional call of
the template would skip the node's).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.dropout import _DropoutNd

from fedgossip.local.flat import FlatParameters

__all__ = ["Layout", "architecture", "model_problems", "hooked", "reasons", "flat_layout", "stacked_call"]

Layout = tuple[tuple[str, torch.Size, int, int], ...]
"""Where each parameter lies in a flat vector: ``(name, shape, start, stop)``, in the vector's order."""

_SHOWN_NODES = 5  # node indices a reason names before it only counts the rest
_Item = TypeVar("_Item")


def architecture(model: nn.Module) -> tuple:
    """Return what two models must share to run one forward: modules, parameter names and shapes."""
    modules = tuple(type(module) for module in model.modules())
    return repr(model), modules, tuple((name, p.shape) for name, p in model.named_parameters())


def model_problems(model: nn.Module, params: FlatParameters, signature: tuple, training: bool) -> list[str]:
    """Return why ``model`` (its parameters ``params``) cannot be called as the template of ``signature``.

    ``training``: whether the call trains. Dropout is refused only then; in eval mode it is
    the identity, in the template as in the model.
    """
    problems = []
    if architecture(model) != signature:
        problems.append("has another architecture than node 0")
    if any(True for _ in model.buffers()):
        problems.append("has buffers (BatchNorm's running statistics?), which a stacked call does not carry")
    normed = any(isinstance(module, _NormBase) for module in model.modules())
    if training and (normed or any(isinstance(module, _DropoutNd) for module in model.modules())):
        problems.append(
            "has BatchNorm, InstanceNorm or dropout, whose training steps are not per-node functions"
        )
    elif normed:
        problems.append("has BatchNorm or InstanceNorm, whose statistics a stacked call does not carry")
    if sum(p.numel() for p in model.parameters()) != params.numel:
        problems.append("has frozen parameters, left out of its flat vector")
    if hooked(model) or any(p._backward_hooks for p in params.params):
        problems.append("has hooks on its modules or parameters, which a functional call would skip")
    return problems


def hooked(model: nn.Module) -> bool:
    """Return whether any module of ``model`` has a forward or backward hook."""
    return any(
        module._forward_hooks
        or module._forward_pre_hooks
        or module._backward_hooks
        or module._backward_pre_hooks
        for module in model.modules()
    )


def reasons(items: Sequence[_Item], problems: Callable[[int, _Item], list[str]]) -> str | None:
    """Return every problem ``problems(index, item)`` finds, each with the nodes it applies to, or None."""
    found: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        for reason in problems(index, item):
            found.setdefault(reason, []).append(index)
    if not found:
        return None
    return "; ".join(f"{reason} ({_nodes(indices)})" for reason, indices in found.items())


def flat_layout(params: FlatParameters) -> Layout:
    """Return where each of the parameters ``params`` holds lies in its flat vector."""
    stops = itertools.accumulate(p.numel() for p in params.params)
    return tuple(
        (name, p.shape, stop - p.numel(), stop)
        for name, p, stop in zip(params.names, params.params, stops, strict=True)
    )


def stacked_call(
    model: nn.Module, layout: Layout, training: bool
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Return ``f(weights, x)``: ``model``'s forward of ``x`` with the parameters in the vector ``weights``.

    ``f`` calls a parameterless copy of ``model`` in train or eval mode (``training``), so no
    node's own module is touched, nor its mode; vmapped over rows of weights it runs every node.
    """
    template = copy.deepcopy(model).to("meta").train(training)

    def call(weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        params = {name: weights[start:stop].view(shape) for name, shape, start, stop in layout}
        return functional_call(template, params, (x,))

    return call


def _nodes(indices: list[int]) -> str:
    """Return ``indices`` as a short phrase: a few shown, the rest counted."""
    shown = ", ".join(str(index) for index in indices[:_SHOWN_NODES])
    more = f" and {len(indices) - _SHOWN_NODES} more" if len(indices) > _SHOWN_NODES else ""
    return f"node{'s' if len(indices) > 1 else ''} {shown}{more}"
