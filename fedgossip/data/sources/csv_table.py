"""Read a CSV table of numeric features and one label column, saying exactly which cell is wrong."""

from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path

import numpy as np

from fedgossip.errors import DataError

__all__ = ["read_csv"]

# numpy's parser reports a bad cell as "... at row R, column C" (R from 0 after the
# skipped header, C from 1); parsed so the message can name the column instead.
_BAD_CELL = re.compile(r"could not convert string '(.*)' to float64 at row (\d+), column (\d+)")
_OPTIONS = {"delimiter": ",", "quotechar": '"', "comments": None, "encoding": "utf-8-sig", "skiprows": 1}


def read_csv(path: Path, label: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Return the header, the float64 features ``[n, columns - 1]`` and the label column as text.

    Parameters
    ----------
    path
        A comma-separated file whose first row names the columns.
    label
        The column that holds the labels; every other column is a numeric feature.

    Raises
    ------
    DataError
        When the file is unreadable or empty, has no header or no such column,
        rows of different lengths, or a feature cell that is not a number.
    """
    header = _header(path, label)
    where = header.index(label)
    features = [i for i in range(len(header)) if i != where]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # numpy warns about a file with no rows; we raise
            cells = np.loadtxt(path, dtype=str, ndmin=2, **_OPTIONS)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path} is not a well-formed CSV table ({exc}); every row needs one cell per column"
        ) from exc
    if cells.shape[0] == 0:
        raise DataError(f"{path} has a header but no rows of data")
    if cells.shape[1] != len(header):
        raise DataError(
            f"{path}: the rows have {cells.shape[1]} cells but the header names {len(header)} columns; "
            "every row needs one cell per column"
        )
    try:
        x = cells[:, features].astype(np.float64)
    except ValueError:
        raise DataError(_bad_cell(path, header, features)) from None
    return header, x, cells[:, where]


def _header(path: Path, label: str) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as stream:
            first = next(csv.reader(stream), None)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path} is not a UTF-8 CSV file ({exc}); save it as UTF-8 text") from exc
    header = [name.strip() for name in first or []]
    if not any(header):
        raise DataError(f"{path} is empty; expected a header row naming the columns, then one row per sample")
    if all(_is_number(name) for name in header):
        raise DataError(
            f"{path} has no header row (its first row is all numbers); add a first row naming the "
            f"columns, one of them {label!r} for the labels"
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DataError(
            f"{path}: columns {', '.join(map(repr, repeated))} appear more than once in the header"
        )
    if label not in header:
        raise DataError(
            f"{path} has no column {label!r} for the labels; its columns are {', '.join(header)}; "
            "choose the label column with label=NAME"
        )
    if len(header) < 2:
        raise DataError(f"{path} has only the label column {label!r}; it needs at least one feature column")
    return header


def _bad_cell(path: Path, header: list[str], features: list[int]) -> str:
    # Parse once more with numpy's float reader, which says where the first bad cell is.
    try:
        np.loadtxt(path, dtype=np.float64, usecols=features, ndmin=2, **_OPTIONS)
    except ValueError as exc:
        match = _BAD_CELL.search(str(exc))
        if match:
            text, row, column = match.group(1), int(match.group(2)), int(match.group(3))
            return (
                f"{path}: row {row + 1} (after the header), column {header[column - 1]!r} holds "
                f"{text!r}, not a number; every column except the label must be numeric"
            )
        return f"{path}: {exc}; every column except the label must be numeric"
    return f"{path}: a feature cell is not a number; every column except the label must be numeric"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
