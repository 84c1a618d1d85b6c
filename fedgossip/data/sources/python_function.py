"""A user's own Python function as a dataset source: ``python:path=F.py,function=load``.

The function takes no arguments and returns the training and test arrays, either as a
tuple ``(x_train, y_train, x_test, y_test)`` (or ``(x_train, y_train)`` without a test
split) or as a dict with those keys. Each array is a numpy array or a torch tensor:
``x`` numbers of shape ``[n, *input_shape]`` (``[n, channels, height, width]`` for
images), finite; ``y`` integer labels ``>= 0`` of shape ``[n]``. Class ``i`` is named
``"i"``; the labels keep their values when they are ``0..C-1``.

The file is imported on the host that runs ``fedgossip partition create``, once; the
shards it writes are plain arrays, so nothing of the code travels with the partition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fedgossip.data.sources.base import Dataset, DatasetSource
from fedgossip.data.sources.files import assemble
from fedgossip.errors import DataError
from fedgossip.specs import Param
from fedgossip.user_code import first_line, load_user_code

__all__ = ["PythonFunction"]

_KEYS = ("x_train", "y_train", "x_test", "y_test")
_CONTRACT = (
    "return (x_train, y_train, x_test, y_test), (x_train, y_train), or a dict with those keys, "
    "as numpy arrays or torch tensors"
)


class PythonFunction(DatasetSource):
    """Call a function in the user's file or module and check the arrays it returns."""

    params = (
        Param("path", str, help="the Python file (F.py) or importable module (pkg.mod) with the function"),
        Param("function", str, default="load", help="the function's name; it takes no arguments"),
    )

    def __init__(self, path: str, function: str = "load"):
        self.path = path
        self.function = function

    def load(self) -> Dataset:
        """Import the code, call the function, and build a :class:`Dataset` from what it returned."""
        code = load_user_code(self.path, "python:path")
        function = code.attribute(self.function, "function")
        where = f"python:path={code.target},function={self.function}"
        if not callable(function):
            raise DataError(f"{where}: {self.function} is a {type(function).__name__}, not a function")
        try:
            returned = function()
        except Exception as exc:
            raise DataError(f"{where}: calling {self.function}() raised {first_line(exc)}") from None
        arrays = _arrays(returned, where)
        for name in ("y_train", "y_test"):
            if arrays.get(name) is not None:
                _check_labels(arrays[name], name, where)
        x_test, y_test = arrays.get("x_test"), arrays.get("y_test")
        return assemble(where, arrays["x_train"], arrays["y_train"], x_test, y_test)


def _arrays(returned: Any, where: str) -> dict[str, np.ndarray | None]:
    """Return the named arrays of a tuple or dict, as numpy arrays; refuse any other shape of result."""
    if isinstance(returned, Mapping):
        unknown = sorted(str(key) for key in returned if key not in _KEYS)
        if unknown or "x_train" not in returned or "y_train" not in returned:
            raise DataError(
                f"{where}: the dict has keys {sorted(map(str, returned))}, expected x_train, y_train "
                "and optionally x_test, y_test"
            )
        values = {key: returned.get(key) for key in _KEYS}
    elif isinstance(returned, tuple) and len(returned) in (2, 4):
        values = dict(zip(_KEYS, returned, strict=False))  # two or four of the keys
    else:
        got = f"a tuple of {len(returned)}" if isinstance(returned, tuple) else f"a {type(returned).__name__}"
        raise DataError(f"{where}: the function returned {got}; it must {_CONTRACT}")
    return {key: None if value is None else _as_numpy(value, key, where) for key, value in values.items()}


def _as_numpy(value: Any, name: str, where: str) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without importing torch here
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        kind = type(value).__name__
        raise DataError(f"{where}: {name} is a {kind}, expected a numpy array or torch tensor")
    return value


def _check_labels(y: np.ndarray, name: str, where: str) -> None:
    """Refuse labels that are not integers >= 0 in one axis: the contract, stricter than files' remapping."""
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
        raise DataError(f"{where}: {name} must hold integer labels, got {y.dtype}; return y.astype(int)")
    if y.ndim != 1:
        raise DataError(f"{where}: {name} has shape {list(y.shape)}, expected [n] (one label per sample)")
    if y.size and int(y.min()) < 0:
        raise DataError(f"{where}: {name} holds the label {int(y.min())}; labels must be integers >= 0")
