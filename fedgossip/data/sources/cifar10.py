"""CIFAR-10, read from the batches in which it is distributed (binary or python version).

Krizhevsky, "Learning Multiple Layers of Features from Tiny Images" (2009);
https://www.cs.toronto.edu/~kriz/cifar.html describes both layouts:

- binary (``cifar-10-batches-bin/``): ``data_batch_1.bin`` .. ``data_batch_5.bin`` and
  ``test_batch.bin``, records of 1 label byte and 3072 pixel bytes (1024 red, 1024
  green, 1024 blue, each row-major 32x32), class names in ``batches.meta.txt``;
- python (``cifar-10-batches-py/``): pickled dicts ``{b"data": uint8 [n, 3072],
  b"labels": [...]}`` named ``data_batch_1`` .. ``test_batch``, class names under
  ``b"label_names"`` in ``batches.meta``. They are read with
  :mod:`fedgossip.data.sources.safe_pickle`, which runs no code the files name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fedgossip.data.sources.base import Dataset, DatasetSource
from fedgossip.data.sources.safe_pickle import load_arrays
from fedgossip.errors import DataError
from fedgossip.specs import Param

__all__ = ["Cifar10", "CLASSES"]

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_PIXELS = 3 * 32 * 32
_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST = "test_batch"
# Where the batches may be, in the order they are looked for: the folder itself, or the
# parent the archive was extracted into; the binary layout first because it needs no unpickling.
_LAYOUTS = ((".bin", ""), (".bin", "cifar-10-batches-bin"), ("", ""), ("", "cifar-10-batches-py"))


class Cifar10(DatasetSource):
    """Load CIFAR-10 (50000 train, 10000 test, 3x32x32 colour images in 10 classes)."""

    name = "cifar10"
    params = (
        Param(
            "path",
            str,
            help="folder with the CIFAR-10 batches (binary or python), or the folder it was extracted into",
        ),
    )
    # SHA-256 of the binary archive from the authors' site, as pinned by torchvision-ruby
    # (ankane/torchvision-ruby) and MLDatasets.jl (JuliaML); its MD5 is the published c32a1d4a...
    remote_files: ClassVar[dict[str, str | None]] = {
        "cifar-10-binary.tar.gz": "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    }
    default_url: ClassVar[str] = "https://www.cs.toronto.edu/~kriz/"

    def __init__(self, path: str):
        self.path = Path(path).expanduser()

    def load(self) -> Dataset:
        """Read the five training batches and the test batch; images become float32 in [0, 1]."""
        folder, suffix = self._locate()
        read = _read_binary if suffix else _read_pickled
        train = [read(folder / f"{name}{suffix}") for name in _TRAIN]
        x_test, y_test = read(folder / f"{_TEST}{suffix}")
        x_train = np.concatenate([x for x, _ in train])
        y_train = np.concatenate([y for _, y in train])
        classes = _binary_classes(folder) if suffix else _pickled_classes(folder)
        for labels, split in ((y_train, "training"), (y_test, "test")):
            if labels.size and labels.max() >= len(classes):
                raise DataError(
                    f"the {split} batches in {folder} contain label {labels.max()}, but CIFAR-10 has "
                    f"{len(classes)} classes; these are not CIFAR-10 batches (CIFAR-100 has its own layout)"
                )
        return Dataset(_to_images(x_train), y_train, classes, _to_images(x_test), y_test)

    def _locate(self) -> tuple[Path, str]:
        names = [f"{name}{suffix}" for suffix in (".bin", "") for name in (*_TRAIN, _TEST)]
        hint = (
            f"expected the binary batches {', '.join(names[:6])} (or the python batches "
            f"{', '.join(names[6:])}) in {self.path} or in {self.path}/cifar-10-batches-bin; download them "
            f"with `fedgossip data download cifar10 --dir {self.path}`"
        )
        if not self.path.is_dir():
            raise DataError(f"{self.path} is not a directory; {hint}")
        for suffix, sub in _LAYOUTS:
            folder = self.path / sub if sub else self.path
            if (folder / f"{_TRAIN[0]}{suffix}").is_file():
                missing = [n for n in (*_TRAIN, _TEST) if not (folder / f"{n}{suffix}").is_file()]
                if missing:
                    listed = ", ".join(f"{n}{suffix}" for n in missing)
                    raise DataError(f"{folder} lacks {listed}; {hint}")
                return folder, suffix
        raise DataError(f"no CIFAR-10 batches found; {hint}")


def _read_binary(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    record = 1 + _PIXELS
    if raw.size == 0 or raw.size % record:
        raise DataError(
            f"{path} has {raw.size} bytes, not a whole number of {record}-byte records (1 label byte "
            f"and {_PIXELS} pixel bytes); the file is truncated or not a CIFAR-10 binary batch"
        )
    records = raw.reshape(-1, record)
    return records[:, 1:], records[:, 0].astype(np.int64)


def _read_pickled(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _keyed_by_text(load_arrays(path), path)
    data, labels = batch.get("data"), batch.get("labels")
    expected = "a dict with b'data' (uint8 array [n, 3072]) and b'labels' (n integers)"
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.shape[1:] == (_PIXELS,)):
        found = (
            f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else repr(data)[:60]
        )
        raise DataError(f"{path}: b'data' is {found}; expected {expected}")
    try:
        labels = np.asarray(labels)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: b'labels' is not a list of integers ({exc}); expected {expected}") from exc
    integers = labels.shape == (len(data),) and np.issubdtype(labels.dtype, np.integer)
    if not integers or (labels.size and labels.min() < 0):
        raise DataError(
            f"{path}: b'labels' holds {labels.size} values of type {labels.dtype} for {len(data)} "
            f"images; expected {expected}, labels >= 0"
        )
    return data, labels.astype(np.int64)


def _keyed_by_text(batch: Any, path: Path) -> dict[str, Any]:
    if not isinstance(batch, dict):
        raise DataError(
            f"{path} holds a pickled {type(batch).__name__}, expected a dict; is it a CIFAR batch?"
        )
    # Python 2 wrote the keys as byte strings; a batch re-saved by Python 3 may use str.
    return {key.decode("latin-1") if isinstance(key, bytes) else key: value for key, value in batch.items()}


def _binary_classes(folder: Path) -> tuple[str, ...]:
    meta = folder / "batches.meta.txt"
    if not meta.is_file():
        return CLASSES
    try:
        names = tuple(line.strip() for line in meta.read_text(encoding="utf-8").splitlines() if line.strip())
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(
            f"cannot read the class names in {meta}: {exc}; delete it to use the defaults"
        ) from exc
    return _checked_names(names, meta)


def _pickled_classes(folder: Path) -> tuple[str, ...]:
    meta = folder / "batches.meta"
    if not meta.is_file():
        return CLASSES
    names = _keyed_by_text(load_arrays(meta), meta).get("label_names")
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, (bytes, str)) for n in names):
        raise DataError(f"{meta} has no list b'label_names'; delete it to use the default class names")
    return _checked_names(tuple(n.decode("utf-8") if isinstance(n, bytes) else n for n in names), meta)


def _checked_names(names: tuple[str, ...], meta: Path) -> tuple[str, ...]:
    if len(names) != len(CLASSES):
        raise DataError(
            f"{meta} names {len(names)} classes, CIFAR-10 has {len(CLASSES)}; it belongs to another "
            "dataset: replace it or delete it to use the default class names"
        )
    return names


def _to_images(pixels: np.ndarray) -> np.ndarray:
    # Both layouts store each image channel-major, which is already [3, 32, 32] order.
    images = pixels.reshape(-1, 3, 32, 32).astype(np.float32)
    images /= np.float32(255.0)
    return images
