"""JSON files of a run directory: written atomically, with values JSON can hold."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_json_atomic", "jsonable"]


def jsonable(value: Any) -> Any:
    """Return ``value`` as plain JSON data: paths as strings, numpy as Python, NaN and inf as null.

    NaN is not JSON; ``null`` is what every reader (jq, browsers, pandas) understands as "no value".
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    raise TypeError(f"cannot record a {type(value).__name__} in JSON: {value!r}")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` through a temporary file and ``os.replace``.

    A reader, or a crash at any moment, sees either the old file or the new one,
    never half of one.
    """
    path = Path(path)
    # Serialize first: a value that cannot be recorded fails before any file is touched.
    text = json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n"
    # Only rank 0 writes run files, so the process id makes the staging name unique; a plain
    # open (not mkstemp, which makes files private) gives the file the user's usual permissions.
    staging = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(staging, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
