"""Users' own data: arrays in an .npz or HDF5 file, or a CSV table.

Every file gives features ``x`` and integer labels ``y``, and optionally a test
split ``x_test``/``y_test``. Features become float32; labels not numbered
``0..C-1`` are remapped and keep their original values as class names
(see :mod:`fedgossip.data.sources.labels`).
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import h5py
import numpy as np

from fedgossip.data.sources.base import Dataset, DatasetSource
from fedgossip.data.sources.csv_table import read_csv
from fedgossip.data.sources.labels import encode_labels
from fedgossip.errors import DataError
from fedgossip.specs import Param

__all__ = ["Npz", "Hdf5", "Csv", "assemble"]

_ZIP_MAGIC = b"PK\x03\x04"  # an .npz is a zip archive of .npy files
_NPY_MAGIC = b"\x93NUMPY"
_REQUIRED = ("x", "y")
_OPTIONAL = ("x_test", "y_test")


class _ArrayFile(DatasetSource):
    """A file holding the arrays ``x``, ``y`` and optionally ``x_test``, ``y_test``."""

    kind = ""  # what the file is, for messages

    def __init__(self, path: str):
        self.path = Path(path).expanduser()

    def load(self) -> Dataset:
        """Read the arrays and check them: numeric features, integer labels, one label per sample."""
        if not self.path.is_file():
            raise DataError(
                f"{self.path} does not exist or is not a file; expected {self.kind} with arrays "
                f"{' and '.join(_REQUIRED)} (optionally {' and '.join(_OPTIONAL)})"
            )
        arrays = self._read()
        return assemble(str(self.path), arrays["x"], arrays["y"], arrays.get("x_test"), arrays.get("y_test"))

    def _read(self) -> dict[str, np.ndarray]:
        """Return the arrays among x, y, x_test, y_test that the file holds (at least x and y)."""
        raise NotImplementedError

    def _require(self, names: list[str]) -> None:
        missing = [name for name in _REQUIRED if name not in names]
        if missing:
            raise DataError(
                f"{self.path} has no array {' or '.join(missing)} (it has {', '.join(names) or 'none'}); "
                "save the features as 'x' and the labels as 'y'"
            )


class Npz(_ArrayFile):
    """Load arrays x, y (and optionally x_test, y_test) from a NumPy .npz file."""

    kind = "an .npz file (numpy.savez)"
    params = (Param("path", str, help="the .npz file, saved with numpy.savez(path, x=..., y=...)"),)

    def _read(self) -> dict[str, np.ndarray]:
        fix = "save it with numpy.savez(path, x=features, y=labels)"
        if not _starts_with(self.path, (_ZIP_MAGIC, _NPY_MAGIC)):
            raise DataError(f"{self.path} is not an .npz archive (it does not start like a zip file); {fix}")
        try:
            # allow_pickle=False: an .npz may come from anywhere, and pickled arrays run code.
            archive = np.load(self.path, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(f"{self.path} is not a readable .npz file ({exc}); {fix}") from exc
        if not hasattr(archive, "files"):
            raise DataError(f"{self.path} holds a single array, not named arrays x and y; {fix}")
        with archive:
            self._require(archive.files)
            try:
                return {name: archive[name] for name in (*_REQUIRED, *_OPTIONAL) if name in archive.files}
            except ValueError as exc:
                raise DataError(
                    f"{self.path} holds an array of Python objects, which is not loaded because it could "
                    f"run code ({exc}); {fix} with numeric arrays"
                ) from exc
            except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
                raise DataError(f"{self.path} is damaged ({exc}); {fix}") from exc


class Hdf5(_ArrayFile):
    """Load datasets x, y (and optionally x_test, y_test) from an HDF5 file."""

    kind = "an HDF5 file"
    params = (Param("path", str, help="the HDF5 file, with datasets x and y at its root"),)

    def _read(self) -> dict[str, np.ndarray]:
        arrays = {}
        try:
            with h5py.File(self.path, "r") as file:
                self._require(list(file.keys()))
                for name in (*_REQUIRED, *_OPTIONAL):
                    if name not in file:
                        continue
                    node = file[name]
                    if not isinstance(node, h5py.Dataset):
                        raise DataError(f"{self.path}: /{name} is a group; it must be a dataset (an array)")
                    arrays[name] = node[()]
        except (OSError, TypeError, ValueError, KeyError) as exc:
            raise DataError(
                f"{self.path} is not a readable HDF5 file ({exc}); write it with h5py, with "
                "datasets x and y at the root"
            ) from exc
        return arrays


class Csv(DatasetSource):
    """Load a CSV table with a header row: one label column, every other column a numeric feature."""

    params = (
        Param("path", str, help="the CSV file; its first row names the columns"),
        Param("label", str, help="name of the column that holds the integer labels"),
        Param("test", str, "", "optional CSV file of test samples with the same header"),
    )

    def __init__(self, path: str, label: str, test: str = ""):
        self.path = Path(path).expanduser()
        self.label = label
        self.test = Path(test).expanduser() if test else None

    def load(self) -> Dataset:
        """Read the table (and the test table) and check labels and features."""
        for path in (self.path, self.test):
            if path is not None and not path.is_file():
                raise DataError(
                    f"{path} does not exist or is not a file; expected a CSV table with a header row"
                )
        header, x, y = read_csv(self.path, self.label)
        x_test = y_test = None
        if self.test is not None:
            test_header, x_test, y_test = read_csv(self.test, self.label)
            if test_header != header:
                raise DataError(
                    f"{self.test} has columns {', '.join(test_header)} but {self.path} has "
                    f"{', '.join(header)}; the test table needs the same header"
                )
        return assemble(str(self.path), x, _numbers(y, self.path), x_test, _numbers(y_test, self.test))


def _starts_with(path: Path, prefixes: tuple[bytes, ...]) -> bool:
    try:
        with open(path, "rb") as stream:
            return stream.read(8).startswith(prefixes)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _numbers(labels: np.ndarray | None, path: Path | None) -> np.ndarray | None:
    if labels is None:
        return None
    try:
        return labels.astype(np.float64)
    except ValueError:
        found = ", ".join(repr(str(value)) for value in np.unique(labels)[:5])
        raise DataError(
            f"{path}: labels must be integers (class indices), found values such as {found}; "
            "map class names to integers 0..C-1 first"
        ) from None


def assemble(
    where: str,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
) -> Dataset:
    """Check users' arrays and build a :class:`Dataset` from them.

    Features must be numbers (bool, int or float), at least 2-D ``[n, ...]``, and
    finite; they become float32. Labels go through :func:`encode_labels`.
    ``where`` names the origin in error messages.
    """
    if (x_test is None) != (y_test is None):
        given, absent = ("x_test", "y_test") if y_test is None else ("y_test", "x_test")
        raise DataError(f"{where} has {given} but no {absent}; give both for a test split, or neither")
    x_train = _features(x, "x", where)
    x_test = None if x_test is None else _features(x_test, "x_test", where)
    y_train, y_test, classes = encode_labels(y, y_test, where)
    for features, labels, split in ((x_train, y_train, ""), (x_test, y_test, "_test")):
        if features is not None and len(features) != len(labels):
            raise DataError(
                f"{where}: x{split} has {len(features)} samples but y{split} has {len(labels)} labels; "
                "give exactly one label per sample"
            )
    if x_test is not None and x_test.shape[1:] != x_train.shape[1:]:
        raise DataError(
            f"{where}: test samples have shape {x_test.shape[1:]} but training samples "
            f"{x_train.shape[1:]}; both splits need the same features"
        )
    return Dataset(x_train, y_train, classes, x_test, y_test)


def _features(x: np.ndarray, name: str, where: str) -> np.ndarray:
    x = np.asarray(x)
    if not (x.dtype == np.bool_ or np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DataError(f"{where}: {name} must hold numbers, got values of type {x.dtype}; convert it first")
    if x.ndim >= 1 and len(x) == 0:
        raise DataError(f"{where}: {name} has no samples; it needs at least one row")
    if x.ndim < 2:
        raise DataError(
            f"{where}: {name} has shape {x.shape}, expected [n, features...] with one row per sample; "
            "a single feature needs shape [n, 1]"
        )
    converted = x.astype(np.float32)
    finite = np.isfinite(converted).reshape(len(converted), -1).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise DataError(
            f"{where}: sample {row} of {name} holds NaN or infinity (or a value too large for float32); "
            "remove or impute such samples first"
        )
    return converted
