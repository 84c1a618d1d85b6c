"""A character LSTM for next-character prediction (LEAF's Shakespeare model, scaled down by default).

LEAF's reference (Caldas et al. 2018; McMahan et al. 2017) embeds each of the 80 characters in
8 dimensions and runs a 2-layer LSTM of 256 units: ``charlstm:embedding=8,hidden=256,layers=2``.
The defaults here (hidden 64, one layer) train in seconds on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn

from fedgossip.errors import ConfigError
from fedgossip.local.models.base import ModelFactory, check_params
from fedgossip.specs import Param

__all__ = ["CharLstm"]


class CharLstm(ModelFactory):
    """Embed character ids, run an LSTM over the sequence, and classify the last state over the vocabulary.

    Inputs are ``[batch, length]`` character ids stored as floats (as the ``leaf`` source gives
    Shakespeare); the vocabulary is the class count, so every id must lie below it.
    """

    params = (
        Param("embedding", int, 8, "dimensions of each character's embedding", ge=1),
        Param("hidden", int, 64, "units of each LSTM layer (LEAF: 256)", ge=1),
        Param("layers", int, 1, "stacked LSTM layers (LEAF: 2)", ge=1),
    )

    def __init__(self, embedding: int = 8, hidden: int = 64, layers: int = 1):
        check_params(type(self), embedding=embedding, hidden=hidden, layers=layers)
        self.embedding, self.hidden, self.layers = int(embedding), int(hidden), int(layers)

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        """Return the network for ``input_shape = (length,)`` over ``num_classes`` characters."""
        if len(input_shape) != 1:
            raise ConfigError(
                f"charlstm reads sequences of character ids [length], got inputs of shape "
                f"{list(input_shape)}; "
                "use it with leaf:path=DIR on Shakespeare, or choose cnn/mlp for other data"
            )
        return _CharLstm(num_classes, self.embedding, self.hidden, self.layers)


class _CharLstm(nn.Module):
    def __init__(self, vocabulary: int, embedding: int, hidden: int, layers: int):
        super().__init__()
        self.embed = nn.Embedding(vocabulary, embedding)
        sizes = [embedding] + [hidden] * (layers - 1)
        self.cells = nn.ModuleList(_LstmLayer(size, hidden) for size in sizes)
        self.out = nn.Linear(hidden, vocabulary)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = self.embed(x.long())
        for cell in self.cells:
            states = cell(states)
        return self.out(states[:, -1])


class _LstmLayer(nn.Module):
    """One LSTM layer written out in matmuls (Hochreiter & Schmidhuber 1997, gates as in nn.LSTM).

    Why not ``nn.LSTM``: its fused kernel has no ``vmap`` batching rule, and fedgossip trains the
    nodes a rank hosts as one vmapped computation (fedgossip.local.batched); these plain ops have one.
    """

    def __init__(self, inputs: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.input_gates = nn.Linear(inputs, 4 * hidden)
        self.state_gates = nn.Linear(hidden, 4 * hidden, bias=False)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        batch, length, _ = sequence.shape
        projected = self.input_gates(sequence)  # all time steps at once; only the recurrence loops
        h = sequence.new_zeros(batch, self.hidden)
        c = sequence.new_zeros(batch, self.hidden)
        outputs = []
        for step in range(length):
            i, f, g, o = (projected[:, step] + self.state_gates(h)).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs, dim=1)
