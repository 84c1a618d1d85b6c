"""The contract every partitioner fulfils, and the registry of partitioners."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from fedgossip.registry import Plugin, Registry

__all__ = ["Samples", "Partitioner", "PARTITIONERS", "check_cover"]


@dataclass(frozen=True)
class Samples:
    """What a partitioner may look at: the training split of a dataset.

    ``x`` is only needed by data-dependent schemes; ``groups`` is the natural
    group of each sample where the source has one, else ``None``.
    """

    y: np.ndarray
    num_classes: int
    x: np.ndarray | None = None
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)


class Partitioner(Plugin, ABC):
    """Split sample indices across nodes.

    The constructor validates the spec's parameters; :meth:`split` checks what
    depends on the data (enough samples for the nodes, ...) *before* any work,
    raising ``ConfigError`` that says which setting to change. It must finish
    in bounded time for every valid input: no resampling until lucky.
    """

    replication: int = 1  # how many nodes hold each sample; dispatching may store a sample on several

    @abstractmethod
    def split(self, samples: Samples, num_nodes: int, rng: np.random.Generator) -> list[np.ndarray]:
        """Return one int64 array of sample indices per node."""


PARTITIONERS: Registry[Partitioner] = Registry("partitioners", Partitioner)


def check_cover(parts: list[np.ndarray], num_samples: int, replication: int = 1) -> None:
    """Raise unless every sample index appears on exactly ``replication`` nodes, never twice on one."""
    counts = np.zeros(num_samples, dtype=np.int64)
    for indices in parts:
        if len(np.unique(indices)) != len(indices):
            raise RuntimeError("partitioner bug: a node received the same sample twice")
        np.add.at(counts, indices, 1)
    if not np.all(counts == replication):
        raise RuntimeError(
            f"partitioner bug: partition covers samples {counts.min()}..{counts.max()} times, "
            f"expected exactly {replication}"
        )
