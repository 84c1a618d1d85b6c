"""Accuracy and mean loss of a model on a labelled set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.functional import cross_entropy

from fedgossip.errors import DataError

__all__ = ["Evaluation", "evaluate", "evaluate_parameters"]


@dataclass(frozen=True)
class Evaluation:
    """Top-1 accuracy in [0, 1] and mean cross-entropy per sample."""

    accuracy: float
    loss: float


def evaluate(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    batch_size: int = 1024,
) -> Evaluation:
    """Evaluate ``model`` on ``(x, y)`` in batches, without gradients and in eval mode.

    The data is moved batch by batch to the model's device, so a large test set may stay
    on the host. The model's previous train/eval mode is restored afterwards.
    """
    if len(x) != len(y) or len(y) == 0:
        raise DataError(f"cannot evaluate on {len(x)} samples with {len(y)} labels; check the test set")
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    x = torch.as_tensor(x, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.int64)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            correct = torch.zeros((), dtype=torch.int64, device=device)
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            for start in range(0, len(y), batch_size):
                xb = x[start : start + batch_size].to(device)
                yb = y[start : start + batch_size].to(device)
                logits = model(xb)
                correct += (logits.argmax(dim=1) == yb).sum()
                loss_sum += cross_entropy(logits, yb, reduction="sum").double()
    finally:
        model.train(was_training)
    # one read-back at the end instead of a device sync per batch
    return Evaluation(accuracy=int(correct) / len(y), loss=float(loss_sum) / len(y))


def evaluate_parameters(
    model: nn.Module,
    flat: torch.Tensor,
    values: np.ndarray,
    x: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
) -> Evaluation:
    """Evaluate ``model`` as if its flat parameter vector ``flat`` held ``values`` (the average model).

    ``flat`` is the vector the model's parameters are views of; it is put back
    as it was afterwards, also when the evaluation fails.
    """
    saved = flat.detach().clone()
    flat.copy_(torch.from_numpy(np.asarray(values, dtype=np.float32)))
    try:
        return evaluate(model, x, y)
    finally:
        flat.copy_(saved)
