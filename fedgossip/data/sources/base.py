"""The dataset contract every source fulfils, and the registry of sources."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from fedgossip.errors import DataError
from fedgossip.registry import Plugin, Registry

__all__ = ["Dataset", "DatasetSource", "SOURCES", "load_source"]


@dataclass(frozen=True)
class Dataset:
    """Samples of one source, ready to partition.

    ``x_*`` are float32 arrays of shape ``[n, *input_shape]`` (images as
    ``[n, channels, height, width]`` scaled to [0, 1], tabular data as ``[n, d]``);
    ``y_*`` are int64 labels in ``range(len(classes))``. ``x_test``/``y_test`` are
    ``None`` when the source has no test split of its own. ``groups`` gives the
    natural group (device, writer, ...) of each training sample, where one exists.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    classes: tuple[str, ...]
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        problems = _shape_problems(self)
        if problems:
            raise DataError("inconsistent dataset: " + "; ".join(problems))

    @property
    def has_test_split(self) -> bool:
        return self.x_test is not None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def fingerprint(self) -> str:
        """Return a SHA-256 of every array, so a partition can name exactly what it was cut from."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test, self.groups):
            if array is not None:
                digest.update(str((array.dtype.str, array.shape)).encode())
                digest.update(np.ascontiguousarray(array).tobytes())
        digest.update("\n".join(self.classes).encode())
        return digest.hexdigest()


def _shape_problems(data: Dataset) -> list[str]:
    problems = []
    pairs = [("train", data.x_train, data.y_train)]
    if data.x_test is not None or data.y_test is not None:
        pairs.append(("test", data.x_test, data.y_test))
    for split, x, y in pairs:
        if x is None or y is None:
            problems.append(f"{split} split has only one of x and y")
            continue
        if x.dtype != np.float32:
            problems.append(f"x_{split} must be float32, got {x.dtype}")
        if y.dtype != np.int64 or y.ndim != 1:
            problems.append(f"y_{split} must be a 1-D int64 array, got {y.dtype} of shape {y.shape}")
        if len(x) != len(y):
            problems.append(f"{split} split has {len(x)} samples but {len(y)} labels")
        if y.size and (y.min() < 0 or y.max() >= len(data.classes)):
            problems.append(f"y_{split} must lie in 0..{len(data.classes) - 1} (one per class name)")
    if data.x_test is not None and data.x_test.shape[1:] != data.x_train.shape[1:]:
        problems.append(f"test inputs have shape {data.x_test.shape[1:]}, train {data.x_train.shape[1:]}")
    if data.groups is not None and data.groups.shape != data.y_train.shape:
        problems.append("groups must give one group per training sample")
    return problems


class DatasetSource(Plugin, ABC):
    """A place samples come from: a bundled set, a generator, or files in a known format.

    The constructor takes the spec's parameters and must not read anything yet;
    :meth:`load` does the reading and raises ``DataError`` naming the path and
    what was expected when the input is not what it should be.
    """

    @abstractmethod
    def load(self) -> Dataset:
        """Read or generate the dataset."""


SOURCES: Registry[DatasetSource] = Registry("datasets", DatasetSource)


def load_source(spec: str) -> tuple[DatasetSource, Dataset]:
    """Create the source named by ``spec`` and load it."""
    source = SOURCES.create(spec)
    return source, source.load()
