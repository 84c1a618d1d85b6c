"""One contiguous float32 vector that holds every trainable parameter of a model.

DESIGN §3 step 3: gossip, compression and averaging work on a single vector, so an
exchange never copies parameter by parameter. :class:`FlatParameters` allocates that
vector, copies the parameter values in, and rebinds every ``param.data`` to a view into
it; gradients get the same treatment in a second vector. The module, its optimizer and
its ``state_dict`` keep working unchanged, because the ``Parameter`` objects stay the
same objects: only the memory behind them moves.

What breaks the binding, and must therefore be avoided after wrapping:

- ``optimizer.zero_grad()`` and ``module.zero_grad()`` with their default
  ``set_to_none=True``: the next backward then allocates a fresh ``.grad`` outside
  ``flat_grad``. Call :meth:`FlatParameters.zero_grad` (which also repairs such a
  binding) or ``optimizer.zero_grad(set_to_none=False)``.
- Converting or moving the module (``.to(other_device)``, ``.half()``): it replaces
  ``param.data``. Move the model to its device *before* wrapping it.
- ``backward(create_graph=True)``: autograd then replaces ``.grad`` instead of adding
  into it.
"""

from __future__ import annotations

import torch
from torch import nn

from fedgossip.errors import ConfigError

__all__ = ["FlatParameters"]


class FlatParameters:
    """Rebind a module's trainable parameters and their gradients to two contiguous float32 vectors.

    Parameters
    ----------
    module
        The model, already on its device and in float32. Parameters with
        ``requires_grad=False`` are left out: they are neither trained nor exchanged.

    Notes
    -----
    Write into :attr:`flat` only between steps (after ``optimizer.step()``, before the
    next forward), never between a forward and its backward: autograd saved the
    parameters for the backward pass and cannot see a write through ``flat``.
    """

    def __init__(self, module: nn.Module):
        named = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
        if not named:
            raise ConfigError(
                f"{type(module).__name__} has no trainable parameters; a model needs at least one "
                "parameter with requires_grad=True to be trained and exchanged"
            )
        _check_uniform(named)
        device = named[0][1].device
        self.names: tuple[str, ...] = tuple(name for name, _ in named)
        self.params: tuple[nn.Parameter, ...] = tuple(p for _, p in named)
        self.numel: int = sum(p.numel() for p in self.params)

        self._flat = torch.empty(self.numel, dtype=torch.float32, device=device)
        self._flat_grad = torch.zeros(self.numel, dtype=torch.float32, device=device)
        views, grad_views = [], []
        offset = 0
        for p in self.params:
            size = p.numel()
            view = self._flat[offset : offset + size].view_as(p)
            view.copy_(p.data)
            # Assigning .data keeps the Parameter object (so optimizers and hooks that
            # hold it keep working) but swaps the memory behind it for the view.
            p.data = view
            views.append(view)
            grad_views.append(self._flat_grad[offset : offset + size].view_as(p))
            offset += size
        self.views: tuple[torch.Tensor, ...] = tuple(views)
        self._grad_views: tuple[torch.Tensor, ...] = tuple(grad_views)
        self._bind_grads()

    @property
    def flat(self) -> torch.Tensor:
        """Return the parameter vector; writing into it changes the model."""
        return self._flat

    @property
    def flat_grad(self) -> torch.Tensor:
        """Return the gradient vector; each backward pass adds into it."""
        return self._flat_grad

    @property
    def device(self) -> torch.device:
        """Return the device both vectors live on."""
        return self._flat.device

    def zero_grad(self) -> None:
        """Zero the gradient vector in place, rebinding any ``.grad`` that was set to ``None`` or replaced.

        Use this instead of ``optimizer.zero_grad()``, whose default ``set_to_none=True``
        detaches ``.grad`` from :attr:`flat_grad`.
        """
        self._bind_grads()
        self._flat_grad.zero_()

    def is_bound(self) -> bool:
        """Return whether every parameter and its gradient still live in the two vectors."""
        return all(
            _same_memory(p, view) and p.grad is not None and _same_memory(p.grad, grad)
            for p, view, grad in zip(self.params, self.views, self._grad_views, strict=True)
        )

    def check(self) -> None:
        """Raise ``RuntimeError`` naming the first parameter whose memory left :attr:`flat`."""
        for name, p, view in zip(self.names, self.params, self.views, strict=True):
            if not _same_memory(p, view):
                raise RuntimeError(
                    f"parameter {name!r} no longer lives in the flat vector: the model was moved or "
                    "converted after FlatParameters wrapped it; move it to its device and dtype first"
                )

    def _bind_grads(self) -> None:
        for p, grad in zip(self.params, self._grad_views, strict=True):
            if p.grad is None or not _same_memory(p.grad, grad):
                p.grad = grad

    def __repr__(self) -> str:
        return f"FlatParameters({len(self.params)} tensors, {self.numel} values, device={self.device})"


def _same_memory(tensor: torch.Tensor, view: torch.Tensor) -> bool:
    return tensor.data_ptr() == view.data_ptr() and tensor.shape == view.shape


def _check_uniform(named: list[tuple[str, nn.Parameter]]) -> None:
    """Refuse parameters that are not float32 or that sit on several devices; name every one."""
    device = named[0][1].device
    problems = [f"{name} is {p.dtype}" for name, p in named if p.dtype != torch.float32]
    problems += [f"{name} is on {p.device}" for name, p in named if p.device != device]
    if problems:
        raise ConfigError(
            f"fedgossip keeps all parameters in one float32 vector on {device}, but "
            + "; ".join(problems)
            + "; build the model in float32 and move it to a single device before training"
        )
