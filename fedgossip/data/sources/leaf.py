"""LEAF's JSON files (Caldas et al., "LEAF: A Benchmark for Federated Settings", 2018).

LEAF's preprocessing scripts write ``DIR/train/*.json`` and ``DIR/test/*.json``, each

    {"users": [u, ...], "num_samples": [n, ...], "user_data": {u: {"x": [...], "y": [...]}}}

Two of its datasets are read, told apart by the shape of ``x``:

- FEMNIST: ``x`` is a list of 784 floats (a 28x28 image, row-major), ``y`` an int in 0..61;
  samples become 1x28x28 float32 images, values as LEAF wrote them (grey level / 255, so the
  white background is 1 and the ink dark; labels 0-9 digits, 10-35 upper, 36-61 lower case).
- Shakespeare: ``x`` is an 80-character string, ``y`` the next character; both become ids in
  LEAF's 80-character vocabulary (:data:`~fedgossip.data.sources.leaf_vocab.LETTERS`), x as
  float32 ``[n, 80]`` (``Dataset`` holds floats; the ``charlstm`` model turns them back into ids).

- Sent140: ``x`` is ``[tweet id, date, query, user, text]``, ``y`` 0 or 1; each tweet becomes a
  hashed bag of words (:mod:`~fedgossip.data.sources.leaf_sent140`), float32 ``[n, 1024]``.

Every user is a natural group, so ``--scheme natural`` gives one node per writer (FEMNIST),
speaking role (Shakespeare) or Twitter user (Sent140). The test files are the held-out split LEAF made.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from fedgossip.data.sources.base import Dataset, DatasetSource
from fedgossip.data.sources.leaf_sent140 import BAG_SIZE, SENT140_CLASSES, is_tweet, tweet_bags
from fedgossip.data.sources.leaf_vocab import FEMNIST_CLASSES, LETTERS
from fedgossip.errors import DataError
from fedgossip.specs import Param

__all__ = ["Leaf"]

_IMAGE = 28 * 28
_FORMAT = '{"users": [...], "num_samples": [...], "user_data": {user: {"x": [...], "y": [...]}}}'


class Leaf(DatasetSource):
    """Read a LEAF dataset (FEMNIST, Shakespeare or Sent140) from DIR/train/*.json and DIR/test/*.json."""

    params = (Param("path", str, help="LEAF data folder holding train/ and test/ with the JSON files"),)

    def __init__(self, path: str):
        self.path = Path(path).expanduser()

    def load(self) -> Dataset:
        """Read every user's samples; the training users become the natural groups."""
        train_users = _read_split(self.path, "train")
        test_users = _read_split(self.path, "test")
        kind = _kind(train_users)
        names = sorted(train_users)
        x_train, y_train = _encode(kind, [train_users[user] for user in names])
        x_test, y_test = _encode(kind, list(test_users.values()))
        if kind == "femnist" and (y_train.max(initial=0) >= 62 or y_test.max(initial=0) >= 62):
            raise DataError(f"{self.path}: FEMNIST labels must lie in 0..61, found a larger one")
        sizes = [len(train_users[user][1]) for user in names]
        groups = np.repeat(np.arange(len(names), dtype=np.int64), sizes)
        classes = _CLASSES.get(kind) or tuple(repr(c)[1:-1] for c in LETTERS)
        return Dataset(x_train, y_train, classes, x_test, y_test, groups)


Samples = tuple[list[Any], list[Any], Path]
_CLASSES = {"femnist": FEMNIST_CLASSES, "sent140": SENT140_CLASSES}
_WIDTHS = {"femnist": (1, 28, 28), "shakespeare": (80,), "sent140": (BAG_SIZE,)}


def _read_split(folder: Path, split: str) -> dict[str, Samples]:
    directory = folder / split
    files = sorted(directory.glob("*.json")) if directory.is_dir() else []
    if not files:
        raise DataError(
            f"no {split} files in {directory}; expected LEAF's DIR/train/*.json and DIR/test/*.json "
            "as its preprocess.sh writes them"
        )
    users: dict[str, Samples] = {}
    for path in files:
        for user, samples in _read_file(path).items():
            if user in users:
                raise DataError(f"{path}: user {user!r} also appears in {users[user][2]}; each user once")
            users[user] = samples
    return users


def _read_file(path: Path) -> dict[str, Samples]:
    try:
        with open(path, encoding="utf-8") as stream:
            content = json.load(stream)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not valid JSON ({exc}); expected LEAF's {_FORMAT}") from exc
    if not isinstance(content, dict) or not {"users", "num_samples", "user_data"} <= content.keys():
        raise DataError(f"{path} lacks users, num_samples or user_data; expected LEAF's {_FORMAT}")
    users, counts, data = content["users"], content["num_samples"], content["user_data"]
    if not (isinstance(users, list) and isinstance(counts, list) and isinstance(data, dict)):
        raise DataError(
            f"{path}: users and num_samples must be lists, user_data an object; expected {_FORMAT}"
        )
    if len(users) != len(counts):
        raise DataError(f"{path} lists {len(users)} users but {len(counts)} num_samples; one count per user")
    result: dict[str, Samples] = {}
    for user, count in zip(users, counts, strict=True):
        samples = data.get(user) if isinstance(user, str) else None
        if not isinstance(samples, dict) or not isinstance(samples.get("x"), list):
            raise DataError(f"{path}: user {user!r} has no user_data entry with lists x and y")
        x, y = samples["x"], samples.get("y")
        if not isinstance(y, list) or len(x) != len(y):
            raise DataError(f"{path}: user {user!r} has {len(x)} x but {_length(y)} y; one label per sample")
        if count != len(x):
            raise DataError(f"{path}: user {user!r} has num_samples {count} but {len(x)} samples")
        result[user] = (x, y, path)
    return result


def _length(value: Any) -> str:
    return str(len(value)) if isinstance(value, list) else "no list of"


def _kind(users: dict[str, Samples]) -> str:
    first = next(((x[0], path) for x, _, path in users.values() if x), None)
    if first is None:
        raise DataError("the LEAF training files hold no samples")
    sample, path = first
    if isinstance(sample, str):
        return "shakespeare"
    if isinstance(sample, list) and len(sample) == _IMAGE:
        return "femnist"
    if is_tweet(sample):
        return "sent140"
    raise DataError(
        f"{path}: a sample x is {type(sample).__name__}"
        f"{f' of length {len(sample)}' if isinstance(sample, list) else ''}; fedgossip reads FEMNIST "
        "(x: 784 floats), Shakespeare (x: an 80-character string) and Sent140 (x: five strings)"
    )


def _encode(kind: str, users: list[Samples]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for x, y, path in users:
        encoded = _ENCODERS[kind](x, y, path)
        xs.append(encoded[0])
        ys.append(encoded[1])
    if not xs:
        return np.zeros((0, *_WIDTHS[kind]), np.float32), np.zeros(0, np.int64)
    return np.concatenate(xs), np.concatenate(ys)


def _images(x: list[Any], y: list[Any], path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        images = np.asarray(x, dtype=np.float32)
        labels = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: FEMNIST x must be lists of 784 numbers and y integers ({exc})") from exc
    if images.ndim != 2 or images.shape[1] != _IMAGE:
        raise DataError(f"{path}: FEMNIST samples must each be 784 numbers (28x28), got shape {images.shape}")
    if not np.all((images >= 0) & (images <= 1)):  # also catches NaN
        raise DataError(f"{path}: FEMNIST pixels must lie in [0, 1] (LEAF divides by 255); found others")
    if labels.ndim != 1 or np.any(labels != np.round(labels)) or np.any(labels < 0):
        raise DataError(f"{path}: FEMNIST labels y must be integers 0..61")
    return images.reshape(-1, 1, 28, 28), labels.astype(np.int64)


def _characters(x: list[Any], y: list[Any], path: Path) -> tuple[np.ndarray, np.ndarray]:
    ids = {c: i for i, c in enumerate(LETTERS)}
    width = len(x[0]) if x and isinstance(x[0], str) else 80
    rows = np.empty((len(x), width), np.float32)
    labels = np.empty(len(x), np.int64)
    for i, (text, target) in enumerate(zip(x, y, strict=True)):
        if not isinstance(text, str) or len(text) != width or not isinstance(target, str) or len(target) != 1:
            raise DataError(
                f"{path}: Shakespeare sample {i} must be an x of {width} characters (LEAF: 80-character) "
                f"and a one-character y, got {type(text).__name__} and {target!r:.20}"
            )
        unknown = sorted({c for c in text + target if c not in ids})
        if unknown:
            raise DataError(
                f"{path}: sample {i} has characters {unknown!r} outside LEAF's 80-character vocabulary"
            )
        rows[i] = [ids[c] for c in text]
        labels[i] = ids[target]
    return rows, labels


_ENCODERS = {"femnist": _images, "shakespeare": _characters, "sent140": tweet_bags}
