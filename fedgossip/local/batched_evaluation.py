"""Evaluate many co-hosted nodes' models on one labelled set as one computation, as each alone would score.

At every evaluation a rank scores each of its nodes on the run's test set. With thousands of
tiny models (logreg, a small MLP) calling :func:`~fedgossip.local.evaluate.evaluate` node by
node spends the time in Python. :class:`BatchedEvaluation` stacks the nodes' flat parameter
vectors and runs the forward pass of many nodes at once, ``torch.func.vmap`` over a
functional call of one template module (:mod:`fedgossip.local.stacking`), in eval mode and
without gradients. It works through the nodes and the samples in chunks, so that no chunk
holds more than ``max_floats`` values of one layer's output (or of stacked weights): ten
thousand nodes on 37,000 test samples never ask for their 3.7 billion logits at once.

Each node's accuracy and mean cross-entropy equal :func:`evaluate`'s up to float rounding,
not bit for bit: the vmapped matmuls sum in another order than one node's, which moves a
logit by about one ulp. The loss then differs in its last digits; a prediction can differ
only where two logits of a sample tie to within that rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.func import vmap
from torch.nn.functional import cross_entropy
from torch.nn.modules.module import register_module_forward_hook

from fedgossip.errors import ConfigError, DataError
from fedgossip.local.evaluate import Evaluation
from fedgossip.local.flat import FlatParameters
from fedgossip.local.stacking import architecture, flat_layout, hooked, model_problems, reasons, stacked_call

__all__ = ["stackable", "chunk_shape", "BatchedEvaluation"]

MAX_FLOATS = 2**24  # values of one layer's output in a chunk: 64 MiB of float32


def stackable(models: Sequence[nn.Module], params: Sequence[FlatParameters]) -> str | None:
    """Return ``None`` when :class:`BatchedEvaluation` can evaluate ``models`` together, else why not.

    ``params[i]`` is the flat vector of ``models[i]``. Each reason names the nodes (indices)
    it applies to; node 0 is the reference the others must match.
    """
    if not models:
        return "there are no models"
    if len(params) != len(models):
        return f"got {len(params)} parameter vectors for {len(models)} models"
    signature, device = architecture(models[0]), params[0].device

    def problems(index: int, node: tuple[nn.Module, FlatParameters]) -> list[str]:
        model, flat = node
        found = model_problems(model, flat, signature, training=False)
        if flat.device != device:
            found.append(f"is on {flat.device}, not on node 0's {device}")
        return found

    return reasons(list(zip(models, params, strict=True)), problems)


def chunk_shape(
    nodes: int, samples: int, width: int, numel: int, batch_size: int, max_floats: int
) -> tuple[int, int]:
    """Return how many nodes and samples one chunk takes.

    ``width`` is the most values one sample makes in any layer of one node, ``numel`` the
    length of a node's flat vector. A chunk takes at most ``batch_size`` samples, and as many
    nodes as keep both its widest layer (nodes × samples × width) and its stacked weights
    (nodes × numel) within ``max_floats``; one node and one sample at the least.
    """
    chunk_samples = max(1, min(samples, batch_size, max_floats // width))
    chunk_nodes = max(1, min(nodes, max_floats // (width * chunk_samples), max_floats // numel))
    return chunk_nodes, chunk_samples


class BatchedEvaluation:
    """Score several models of one architecture on a labelled set as one computation.

    Parameters
    ----------
    models, params
        The nodes' models and the flat vectors their parameters live in; :func:`stackable`
        says what is refused, and the constructor raises ``ConfigError`` with its reasons.
        Nothing of theirs is held but references: each :meth:`evaluate` reads the vectors
        as they are then, and leaves the models, their parameters and their modes alone.
    batch_size
        The most samples of a chunk, as :func:`evaluate`'s batch size.
    max_floats
        The most values of one layer's output, or of stacked weights, in a chunk.
    """

    def __init__(
        self,
        models: Sequence[nn.Module],
        params: Sequence[FlatParameters],
        batch_size: int = 1024,
        max_floats: int = MAX_FLOATS,
    ):
        reason = stackable(models, params)
        if reason is not None:
            raise ConfigError(f"cannot evaluate these nodes as one batch: {reason}; evaluate them one by one")
        if batch_size < 1 or max_floats < 1:
            raise ValueError(f"batch_size and max_floats must be at least 1, got {batch_size}, {max_floats}")
        self.models = tuple(models)
        self.params = tuple(params)
        self.batch_size = batch_size
        self.max_floats = max_floats
        self._device = self.params[0].device
        self._call = stacked_call(self.models[0], flat_layout(self.params[0]), training=False)
        self._forward = vmap(self._call, in_dims=(0, None))  # every node's weights, the samples shared
        self._widths: dict[tuple[int, ...], int] = {}  # by the shape of a sample

    def evaluate(self, x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> list[Evaluation]:
        """Return each model's top-1 accuracy and mean cross-entropy on ``(x, y)``, in the models' order.

        The data is moved chunk by chunk to the models' device, as :func:`evaluate` moves it.
        Raises ``ConfigError`` when a hook was put on a model since construction.
        """
        if len(x) != len(y) or len(y) == 0:
            raise DataError(f"cannot evaluate on {len(x)} samples with {len(y)} labels; check the test set")
        # a plugin may have hooked a model since construction; the rest stays as checked
        reason = reasons(self.models, lambda _, model: ["has hooks on its modules"] if hooked(model) else [])
        if reason is not None:
            raise ConfigError(f"cannot evaluate these nodes as one batch any more: {reason}")
        for flat in self.params:
            flat.check()
        x = torch.as_tensor(x, dtype=torch.float32)
        y = torch.as_tensor(y, dtype=torch.int64)
        count, samples = len(self.models), len(y)
        nodes_per_chunk, samples_per_chunk = self.chunk_shape(x)
        correct = torch.zeros(count, dtype=torch.int64, device=self._device)
        loss_sum = torch.zeros(count, dtype=torch.float64, device=self._device)
        with torch.no_grad():
            for first in range(0, count, nodes_per_chunk):
                rows = slice(first, first + nodes_per_chunk)
                weights = torch.stack([flat.flat for flat in self.params[rows]])
                for start in range(0, samples, samples_per_chunk):
                    xb = x[start : start + samples_per_chunk].to(self._device)
                    yb = y[start : start + samples_per_chunk].to(self._device)
                    logits = self._forward(weights, xb)  # [nodes, samples, classes]
                    correct[rows] += (logits.argmax(dim=2) == yb).sum(dim=1)
                    # cross_entropy takes the classes on axis 1; summed in float64, as evaluate sums
                    targets = yb.expand(len(weights), -1)
                    losses = cross_entropy(logits.transpose(1, 2), targets, reduction="none")
                    loss_sum[rows] += losses.double().sum(dim=1)
        # one read-back at the end instead of a device sync per chunk
        return [
            Evaluation(accuracy=right / samples, loss=total / samples)
            for right, total in zip(correct.tolist(), loss_sum.tolist(), strict=True)
        ]

    def chunk_shape(self, x: torch.Tensor | np.ndarray) -> tuple[int, int]:
        """Return how many nodes and samples of ``x`` one chunk takes (:func:`chunk_shape`)."""
        return chunk_shape(
            len(self.models), len(x), self._width(x), self.params[0].numel, self.batch_size, self.max_floats
        )

    def _width(self, x: torch.Tensor | np.ndarray) -> int:
        """Return the most values one sample of ``x`` makes in any module's output, logits included.

        Measured once per sample shape by a forward of node 0 on one sample. A Flatten layer's
        output counts too, though the nodes share it (an overestimate); what a custom forward
        computes outside its modules is not seen.
        """
        shape = tuple(x.shape[1:])
        if shape not in self._widths:
            widths = [1]

            def record(module: nn.Module, args: tuple, output: object) -> None:
                if isinstance(output, torch.Tensor):
                    widths.append(output.numel())

            # global, but only the template's modules run while it is registered
            handle = register_module_forward_hook(record)
            sample = torch.as_tensor(x[:1], dtype=torch.float32).to(self._device)
            try:
                with torch.no_grad():
                    self._call(self.params[0].flat, sample)
            finally:
                handle.remove()
            self._widths[shape] = max(widths)
        return self._widths[shape]
