"""An endless stream of shuffled mini-batches from one node's shard."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from fedgossip.errors import DataError

__all__ = ["BatchStream"]

# The state saved before plugins could change the stream; still accepted when nothing had changed it.
_ORDER_KEYS = {"epoch", "position", "order", "rng"}
_STATE_KEYS = _ORDER_KEYS | {"hidden", "extra_x", "extra_y", "generation"}


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

    Training-time plugins may change what the stream serves: :meth:`set_extra`
    appends samples after the shard's own (data received from neighbours; the
    epoch under way ends there), :meth:`hide` leaves some out of the coming epochs (importance
    filtering), and ``on_epoch_start(epoch)`` is called just before each epoch's
    order is drawn, the moment a filter decides what to hide.
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
        self._own_x = torch.as_tensor(np.asarray(x, dtype=np.float32)).to(device)
        self._own_y = torch.as_tensor(np.asarray(y, dtype=np.int64)).to(device)
        self._x, self._y = self._own_x, self._own_y
        self._rng = np.random.default_rng(seed)
        self.own_samples = self.num_samples = len(y)
        self.batch_size = min(int(batch_size), self.num_samples)
        self.steps_per_epoch = math.ceil(self.num_samples / self.batch_size)
        self.epoch = 0  # epochs completed: the number of times the last batch of an epoch was served
        self._order: torch.Tensor | None = None  # this epoch's permutation, on the device
        self._position = 0  # index into _order of the next batch's first sample
        self._hidden: np.ndarray | None = None  # sample positions left out of the coming epochs
        self.on_epoch_start: Callable[[int], None] | None = None
        self.last_indices: torch.Tensor | None = None  # positions of the samples of the last batch served
        self.generation = 0  # counts set_extra calls: positions past own_samples may now hold other samples

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the next ``(x, y)`` batch, starting a freshly shuffled epoch when one ends."""
        index = self.next_indices()
        return self._x.index_select(0, index), self._y.index_select(0, index)

    def next_indices(self) -> torch.Tensor:
        """Advance as :meth:`next_batch` does, but return the batch's positions in :meth:`full_batch`.

        For a caller that gathers many streams' batches at once from its own copy of their samples.
        """
        if self._order is None:
            self._order = self._draw_order()
        stop = min(self._position + self.batch_size, len(self._order))
        index = self._order[self._position : stop]
        self._position = stop
        if stop == len(self._order):
            self.epoch += 1
            self._order, self._position = None, 0
        self.last_indices = index
        return index

    @property
    def at_epoch_start(self) -> bool:
        """Return True when the next batch begins a fresh epoch (its order not drawn yet)."""
        return self._order is None

    def begin_epoch(self) -> None:
        """Draw the coming epoch's order now, if it is not drawn yet (``on_epoch_start`` runs now).

        A filter calls it before planning a round, so the round is sized by the samples
        the epoch will really serve.
        """
        if self._order is None:
            self._order = self._draw_order()

    def _draw_order(self) -> torch.Tensor:
        """Return a fresh epoch's order: a permutation of the samples not hidden."""
        if self.on_epoch_start is not None:
            self.on_epoch_start(self.epoch)
        order = self._rng.permutation(self.num_samples)
        if self._hidden is not None and len(self._hidden):
            order = order[~np.isin(order, self._hidden)]
        return torch.from_numpy(order).to(self._x.device)

    @property
    def visible_samples(self) -> int:
        """Return how many samples an epoch drawn now would serve."""
        return self.num_samples - (0 if self._hidden is None else len(self._hidden))

    def hide(self, positions: np.ndarray | None) -> None:
        """Leave the samples at ``positions`` out of every epoch drawn from now on (None: hide none).

        An epoch already under way is served to its end, so no sample is seen
        twice or skipped within it. At least one sample must stay visible.
        """
        if positions is not None:
            positions = np.unique(np.asarray(positions, dtype=np.int64))
            if len(positions) and (positions[0] < 0 or positions[-1] >= self.num_samples):
                raise IndexError(f"hidden positions must lie in 0..{self.num_samples - 1}")
            if len(positions) >= self.num_samples:
                raise ValueError("at least one sample must stay visible")
        self._hidden = positions
        self.steps_per_epoch = math.ceil(self.visible_samples / self.batch_size)

    def set_extra(self, x: np.ndarray, y: np.ndarray) -> None:
        """Serve ``(x, y)`` after the shard's own samples, replacing any extra samples set before.

        The epoch under way ends here (it counts as completed, so epoch-based
        decisions such as a filter's warm-up still advance) and a fresh one, over
        the new set, begins with the next batch; hidden positions are cleared, as
        they may no longer point at the same samples.
        """
        self._append(x, y)
        self.generation += 1
        if self._order is not None:
            self.epoch += 1
        self._order, self._position = None, 0
        self.hide(None)

    def _append(self, x: np.ndarray, y: np.ndarray) -> None:
        """Serve ``(x, y)`` after the shard's own samples, leaving the order, epoch and hidden set alone."""
        x = torch.as_tensor(np.asarray(x, dtype=np.float32)).to(self._own_x.device)
        y = torch.as_tensor(np.asarray(y, dtype=np.int64)).to(self._own_y.device)
        if x.shape[1:] != self._own_x.shape[1:] or len(x) != len(y):
            raise DataError(
                f"extra samples of shape {tuple(x.shape)} with {len(y)} labels do not fit a shard of "
                f"samples shaped {tuple(self._own_x.shape[1:])}"
            )
        self._x = torch.cat([self._own_x, x]) if len(x) else self._own_x
        self._y = torch.cat([self._own_y, y]) if len(y) else self._own_y
        self.num_samples = len(self._y)

    def full_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return every sample served (the shard's own, then any extra ones), without advancing the stream."""
        return self._x, self._y

    def state_dict(self) -> dict[str, Any]:
        """Return what a checkpoint needs to resume this exact sequence of batches, plugins' changes included.

        The extra samples are saved as served (a sharing plugin cannot rebuild them without
        exchanging again), with the hidden positions and the ``generation`` filters compare against.
        """
        return {
            "epoch": self.epoch,
            "position": self._position,
            "order": None if self._order is None else self._order.cpu().numpy(),
            "rng": self._rng.bit_generator.state,
            "hidden": None if self._hidden is None else self._hidden.copy(),
            "extra_x": self._x[self.own_samples :].cpu().numpy(),
            "extra_y": self._y[self.own_samples :].cpu().numpy(),
            "generation": self.generation,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` of a stream over the same shard.

        The extra samples come back first, without ending an epoch (the saved ``generation``
        is taken as is), then the hidden positions, then the order and the generator. A state
        of only ``epoch``, ``position``, ``order`` and ``rng``, saved before plugins' changes
        were kept, restores those four alone.
        """
        if set(state) not in (_STATE_KEYS, _ORDER_KEYS):
            raise KeyError(f"batch stream state needs keys {sorted(_STATE_KEYS)}, got {sorted(state)}")
        full = set(state) == _STATE_KEYS
        samples = self.own_samples + len(state["extra_y"]) if full else self.num_samples
        # copies: a loaded checkpoint's arrays may be read-only, which torch would warn about sharing
        order = None if state["order"] is None else np.array(state["order"], dtype=np.int64)
        if order is not None and (len(order) > samples or (len(order) and order.max() >= samples)):
            raise ValueError(f"saved order does not fit this shard of {samples} samples")
        if full:
            self._append(np.array(state["extra_x"], np.float32), np.array(state["extra_y"], np.int64))
            self.generation = int(state["generation"])
            self.hide(None if state["hidden"] is None else np.asarray(state["hidden"], dtype=np.int64))
        self.epoch = int(state["epoch"])
        self._position = int(state["position"])
        self._order = None if order is None else torch.from_numpy(order).to(self._x.device)
        self._rng.bit_generator.state = state["rng"]
