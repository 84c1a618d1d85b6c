"""JSON files of a run directory: written atomically, with values JSON can hold; read with limits."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from fedgossip.bounded_read import FileProblem, read_bounded

__all__ = ["write_json_atomic", "jsonable", "read_json", "JSON_LIMIT", "JSON_DEPTH"]

# Far beyond any file fedgossip writes (run.json of 10,000 nodes is a few MB); a file bigger is not ours.
JSON_LIMIT = 64 << 20
# run.json nests a few levels; a reader recursing through 10,000 levels would overflow Python's stack.
JSON_DEPTH = 64


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


def read_json(path: Path, limit: int = JSON_LIMIT) -> Any:
    """Return the JSON in the regular file ``path``, of at most ``limit`` bytes and ``JSON_DEPTH`` levels.

    Raises ``FileNotFoundError`` if it does not exist, and ``FileProblem`` (its text
    follows the path: "is not readable JSON (...)") for anything else.
    """
    data = read_bounded(Path(path), limit)
    try:
        value = json.loads(data)
    # ValueError: bad JSON, bad UTF-8, an integer of over 4300 digits; RecursionError: "[[[[…"
    except (ValueError, RecursionError) as exc:
        detail = "it nests too deep" if isinstance(exc, RecursionError) else " ".join(str(exc).split())
        raise FileProblem(f"is not readable JSON ({detail})") from None
    if _depth(value) > JSON_DEPTH:
        raise FileProblem(f"is not readable JSON (it nests deeper than {JSON_DEPTH} levels)")
    return value


def _depth(value: Any) -> int:
    """Return how deep lists and objects nest in ``value``, without recursing."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest
