"""Draw the next batch of many nodes' streams as one padded tensor, gathered from one copy of their data.

Batched training (:mod:`fedgossip.local.batched`) needs every node's next batch
stacked ``[nodes, batch, ...]``. Asking each stream for its batch costs two
``index_select`` calls and a stack per node and step; at a thousand nodes that
Python work, not the arithmetic, is the step. Here each stream only advances
its own order (:meth:`~fedgossip.local.batches.BatchStream.next_indices`: the
same samples, in the same order, as ``next_batch``), and one gather fetches all
the batches from a concatenation of the streams' samples.

Batches of unequal size (an epoch's short last batch, shards smaller than the
batch size) are padded to the largest with a node's own first sample and come
with a mask, so the nodes still take one computation: the padded entries weigh
nothing in the loss, hence nothing in the gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn.utils.rnn import pad_sequence

from fedgossip.local.batches import BatchStream

__all__ = ["StackedBatch", "StackedBatches"]


@dataclass
class StackedBatch:
    """The batches of some nodes: ``x`` ``[k, B, ...]``, ``y`` ``[k, B]``, each node's ``sizes`` ``[k]``.

    ``mask`` ``[k, B]`` (1 for a real sample, 0 for padding) is ``None`` when every
    batch is full size, so the common case computes exactly the plain mean loss.
    """

    x: torch.Tensor
    y: torch.Tensor
    sizes: torch.Tensor
    mask: torch.Tensor | None


class StackedBatches:
    """Serve the next batches of ``streams`` (all on one device, one sample shape) stacked and padded."""

    def __init__(self, streams: Sequence[BatchStream]):
        self.streams = tuple(streams)
        self._served: tuple[tuple[int, int], ...] = ()  # (id, generation) of what the copy holds
        self._x = self._y = self._offsets = None

    def next(self, nodes: Sequence[int]) -> StackedBatch:
        """Advance the streams of ``nodes`` (positions in ``streams``) by one batch each; return them."""
        self._refresh()
        indices = [self.streams[node].next_indices() for node in nodes]
        device = self._offsets.device
        sizes = torch.tensor([len(index) for index in indices], dtype=torch.long, device=device)
        rows = torch.as_tensor(nodes, dtype=torch.long, device=device)
        padded = pad_sequence(indices, batch_first=True)  # padding is position 0: the node's first sample
        padded += self._offsets[rows].unsqueeze(1)
        width = padded.shape[1]
        mask = None
        if bool((sizes != width).any()):
            mask = (torch.arange(width, device=device).unsqueeze(0) < sizes.unsqueeze(1)).to(self._x.dtype)
        flat = padded.reshape(-1)
        x = self._x.index_select(0, flat).view(len(nodes), width, *self._x.shape[1:])
        y = self._y.index_select(0, flat).view(len(nodes), width)
        return StackedBatch(x, y, sizes, mask)

    def _refresh(self) -> None:
        """(Re)build the one copy of every stream's samples when a stream serves other samples than it holds.

        A stream's samples change only through ``set_extra`` (which counts its ``generation``).
        """
        served = tuple((id(stream), stream.generation) for stream in self.streams)
        if served == self._served:
            return
        parts = [stream.full_batch() for stream in self.streams]
        lengths = torch.tensor([len(y) for _, y in parts], dtype=torch.long)
        self._x = torch.cat([x for x, _ in parts])
        self._y = torch.cat([y for _, y in parts])
        self._offsets = (torch.cumsum(lengths, 0) - lengths).to(self._x.device)
        self._served = served
