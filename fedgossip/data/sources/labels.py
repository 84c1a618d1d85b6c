"""Check labels users bring in their own files and turn them into class indices.

A file may number its classes 1..10, use sparse codes such as 3, 7, 42, or
store integer labels as floats. Every source hands out labels ``0..C-1``, so
such labels are remapped and their original values kept as the class names.
"""

from __future__ import annotations

import numpy as np

from fedgossip.errors import DataError

__all__ = ["encode_labels"]


def encode_labels(
    train: np.ndarray, test: np.ndarray | None, where: str
) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...]]:
    """Return int64 class indices for ``train`` and ``test`` and the name of each class.

    Parameters
    ----------
    train, test
        Labels as read from a file; ``test`` is ``None`` when there is no test split.
        Integer, boolean and integer-valued float labels are accepted.
    where
        Names the file (and array) in error messages.

    Returns
    -------
    y_train, y_test, classes
        Labels in ``0..C-1`` and ``C`` class names. Labels already numbered
        ``0..C-1`` keep their values; any other set of values is mapped in
        increasing order, so class ``i`` is named after the ``i``-th smallest value.

    Raises
    ------
    DataError
        When labels are not integers or not one per sample.
    """
    y_train = _as_integers(train, "training", where)
    y_test = None if test is None else _as_integers(test, "test", where)
    if y_train.size == 0:
        raise DataError(f"{where}: the training split has no labels; it needs at least one sample")
    # The union over both splits, so a class seen only in the test split still gets an index.
    both = y_train if y_test is None else np.concatenate([y_train, y_test])
    values = np.unique(both)
    classes = tuple(str(value) for value in values)
    if values[0] == 0 and values[-1] == len(values) - 1:
        return y_train, y_test, classes
    y_test = None if y_test is None else np.searchsorted(values, y_test).astype(np.int64)
    return np.searchsorted(values, y_train).astype(np.int64), y_test, classes


def _as_integers(labels: np.ndarray, split: str, where: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]  # a column vector [n, 1] is a common way to save labels
    if labels.ndim != 1:
        raise DataError(
            f"{where}: {split} labels must be one integer per sample (shape [n]), got shape "
            f"{labels.shape}; one-hot labels can be turned into indices with argmax(axis=1)"
        )
    if labels.dtype == np.bool_ or np.issubdtype(labels.dtype, np.integer):
        return labels.astype(np.int64)
    if np.issubdtype(labels.dtype, np.floating):
        whole = np.isfinite(labels) & (labels == np.round(labels)) & (np.abs(labels) < 2.0**62)
        if whole.all():
            return labels.astype(np.int64)
        bad = int(np.flatnonzero(~whole)[0])
        raise DataError(
            f"{where}: {split} labels must be integers (class indices), but label {bad} is "
            f"{labels[bad]!r}; regression targets are not supported, and class labels must be "
            "whole numbers"
        )
    raise DataError(
        f"{where}: {split} labels must be integers (class indices), got values of type "
        f"{labels.dtype}; map class names to integers 0..C-1 before saving"
    )
