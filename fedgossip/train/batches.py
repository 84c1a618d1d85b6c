"""An endless stream of shuffled mini-batches from one node's shard."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fedgossip.errors import DataError

__all__ = ["BatchStream"]


class BatchStream:
    """Serve mini-batches of a shard forever, reshuffling at the start of every epoch.

    Parameters
    ----------
    x, y
        The shard: float32 samples ``[n, *input_shape]`` and int64 labels ``[n]``.
        They are converted to tensors on ``device`` once, here, not per batch.
    batch_size
        Samples per batch. The last batch of an epoch holds the ``n % batch_size``
        left over, so every sample is served exactly once per epoch; a batch size
        above ``n`` gives the whole shard as one batch.
    seed
        Seeds this stream's own ``numpy.random.Generator``. Data order must *differ*
        across ranks, so the caller passes a seed that includes the rank; ``(seed, rank)``
        is the safest form, since ``seed + rank`` makes run seed 1 on rank 0 replay
        run seed 0 on rank 1.
    device
        Where the batches live.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        seed: int | Sequence[int],
        device: torch.device | str = "cpu",
    ):
        problems = []
        if len(x) != len(y):
            problems.append(f"{len(x)} samples but {len(y)} labels")
        if len(y) == 0:
            problems.append("the shard is empty")
        if batch_size < 1:
            problems.append(f"batch size must be at least 1, got {batch_size}")
        if problems:
            raise DataError(
                "cannot draw batches: " + "; ".join(problems) + "; check the partition and --batch-size"
            )
        self._x = torch.as_tensor(np.asarray(x, dtype=np.float32)).to(device)
        self._y = torch.as_tensor(np.asarray(y, dtype=np.int64)).to(device)
        self._rng = np.random.default_rng(seed)
        self.num_samples = len(y)
        self.batch_size = min(int(batch_size), self.num_samples)
        self.steps_per_epoch = math.ceil(self.num_samples / self.batch_size)
        self.epoch = 0  # epochs completed: the number of times the last batch of an epoch was served
        self._order: torch.Tensor | None = None  # this epoch's permutation, on the device
        self._position = 0  # index into _order of the next batch's first sample

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the next ``(x, y)`` batch, starting a freshly shuffled epoch when one ends."""
        if self._order is None:
            self._order = torch.from_numpy(self._rng.permutation(self.num_samples)).to(self._x.device)
        stop = min(self._position + self.batch_size, self.num_samples)
        index = self._order[self._position : stop]
        self._position = stop
        if stop == self.num_samples:
            self.epoch += 1
            self._order, self._position = None, 0
        return self._x.index_select(0, index), self._y.index_select(0, index)

    def full_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the whole shard in its stored order, without advancing the stream."""
        return self._x, self._y

    def state_dict(self) -> dict[str, Any]:
        """Return what a checkpoint needs to resume this exact sequence of batches."""
        return {
            "epoch": self.epoch,
            "position": self._position,
            "order": None if self._order is None else self._order.cpu().numpy(),
            "rng": self._rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` of a stream over the same shard."""
        expected = {"epoch", "position", "order", "rng"}
        if set(state) != expected:
            raise KeyError(f"batch stream state needs keys {sorted(expected)}, got {sorted(state)}")
        order = state["order"]
        if order is not None and len(order) != self.num_samples:
            raise ValueError(f"saved order covers {len(order)} samples, this shard has {self.num_samples}")
        self.epoch = int(state["epoch"])
        self._position = int(state["position"])
        self._order = None if order is None else torch.as_tensor(np.asarray(order)).to(self._x.device)
        self._rng.bit_generator.state = state["rng"]
