"""Unpickle files that should hold only plain numpy arrays, without running code they ask for.

A pickle is a program: ``pickle.load`` calls whatever function the file names,
so a tampered dataset file can run ``os.system`` on the machine that reads it.
:class:`ArrayUnpickler` resolves only the handful of names a pickled numeric
numpy array needs; anything else stops the load before it is called.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from fedgossip.errors import DataError

try:  # numpy >= 2 moved the internals to numpy._core
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct

__all__ = ["ArrayUnpickler", "load_arrays"]

# Every global a pickled ndarray refers to, and nothing else. An array pickles as
# _reconstruct(ndarray, shape, dtype) followed by ndarray.__setstate__ with its raw bytes.
_ALLOWED: dict[tuple[str, str], Any] = {
    # creates the empty array; named under numpy.core by numpy 1.x and by the Python 2
    # pickles in which CIFAR-10 and many older datasets are distributed
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    # the same function as numpy >= 2 names it
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    # the class _reconstruct is asked to instantiate
    ("numpy", "ndarray"): np.ndarray,
    # the element type of the array (uint8, float32, ...)
    ("numpy", "dtype"): np.dtype,
}


class ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds dicts, lists, strings, numbers and numpy arrays, and calls nothing else.

    Strings written by Python 2 come back as ``bytes`` (``encoding="bytes"``),
    which is how the CIFAR python batches name their keys (``b"data"``).
    """

    def find_class(self, module: str, name: str) -> Any:
        """Return one of the few allowed numpy names; refuse every other global."""
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused to load global {module}.{name}") from None


def load_arrays(path: Path) -> Any:
    """Unpickle ``path`` with :class:`ArrayUnpickler` and refuse object arrays in the result.

    Raises
    ------
    DataError
        When the file cannot be read, names anything but numpy arrays, is
        truncated or garbled, or holds an array of Python objects.
    """
    try:
        with open(path, "rb") as stream:
            loaded = ArrayUnpickler(stream, encoding="bytes").load()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except Exception as exc:
        # Crafted or damaged input can raise almost anything from inside the unpickler
        # (UnpicklingError, EOFError, TypeError, ValueError, MemoryError, ...).
        raise DataError(_refusal(path, f"{type(exc).__name__}: {exc}")) from exc
    if _holds_objects(loaded):
        raise DataError(_refusal(path, "it contains an array of Python objects (dtype=object)"))
    return loaded


def _refusal(path: Path, reason: str) -> str:
    return (
        f"{path} is not a plain pickle of numpy arrays ({reason}); the file may be corrupt or "
        "malicious, so it was not loaded: download it again from a source you trust"
    )


def _holds_objects(root: Any) -> bool:
    # Walk iteratively with a seen-set: a crafted pickle can nest deeply or refer to itself.
    stack, seen = [root], set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray) and item.dtype.hasobject:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
    return False
