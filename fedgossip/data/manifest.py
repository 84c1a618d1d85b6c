"""``partition.json``: what a partition directory holds, and the checks that make it trustworthy.

The manifest is the only file read before any shard is opened, so it is checked
strictly: every required key, the format version, the type of every field, and
file names that cannot point outside the directory. Anyone may have edited it, so
whatever it holds must end in a ``DataError`` naming it, never in a ``TypeError``
three calls later.
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fedgossip.bounded_read import FileProblem, read_bounded
from fedgossip.errors import DataError

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "TEST_NAME",
    "DISPATCH_NAME",
    "ShardInfo",
    "Manifest",
    "shard_name",
]

FORMAT_VERSION = 1
MANIFEST_NAME = "partition.json"
TEST_NAME = "test.h5"
DISPATCH_NAME = "dispatch.h5"  # the dispatch rule of a dispatch partition, the one optional file
_SHARD_PATTERN = re.compile(r"shard-\d{5}\.h5")  # matched in full: no trailing newline, no "/.."
_SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
_SHOWN = 5  # problems of shard entries listed before "and N more"
_MANIFEST_LIMIT = 256 << 20  # a manifest of 10^5 shards takes tens of MB; a bigger file is not one


def shard_name(node: int) -> str:
    """Return the file name of node ``node``'s shard."""
    return f"shard-{node:05d}.h5"


@dataclass(frozen=True)
class ShardInfo:
    """One file of the partition: its name, sample count and label histogram."""

    file: str
    size: int
    label_histogram: list[int]


@dataclass(frozen=True)
class Manifest:
    """Everything ``partition.json`` records about a partition."""

    source: str  # canonical spec of the dataset source, e.g. "digits"
    source_sha256: str  # fingerprint of the arrays the partition was cut from
    scheme: str  # canonical spec of the partitioner, e.g. "dirichlet:alpha=0.1,min_size=10,balance=false"
    seed: int
    nodes: int
    classes: list[str]
    input_shape: list[int]
    test_fraction: float | None  # None: the source's own test split was used
    replication: int  # how many nodes hold each training sample
    shards: list[ShardInfo]
    test: ShardInfo
    stats: dict[str, Any]  # heterogeneity measures (fedgossip.data.stats.heterogeneity)
    files: dict[str, str]  # file name -> SHA-256 of its bytes
    created_with: str  # fedgossip version
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # scheme-specific records (e.g. cluster purity)

    @property
    def train_size(self) -> int:
        return sum(s.size for s in self.shards) // self.replication

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        """Read and check ``directory/partition.json``."""
        path = directory / MANIFEST_NAME
        if not directory.is_dir():
            raise DataError(
                f"{directory} is not a partition directory (it does not exist); "
                "make one with `fedgossip partition create`"
            )
        if not path.exists():
            raise DataError(
                f"{path} is missing, so {directory} is not a partition directory; "
                "make one with `fedgossip partition create`"
            )
        try:
            # Only a regular file, of bounded size: a FIFO would block the read forever, /dev/zero
            # or a sparse terabyte would fill memory.
            raw = json.loads(read_bounded(path, _MANIFEST_LIMIT))
        except FileProblem as exc:
            raise DataError(f"{path} {exc}; recreate the partition") from None
        # ValueError: bad JSON, bad UTF-8, an integer of over 4300 digits; RecursionError: "[[[[…"
        except (ValueError, RecursionError) as exc:
            raise DataError(f"{path} is not readable JSON ({exc}); recreate the partition") from exc
        return cls.from_dict(raw, path)

    @classmethod
    def from_dict(cls, raw: Any, path: Path) -> Manifest:
        """Build a manifest from parsed JSON, reporting every problem found."""
        if not isinstance(raw, dict):
            raise DataError(f"{path} must hold a JSON object; recreate the partition")
        version = raw.get("format_version")
        if type(version) is not int or version != FORMAT_VERSION:  # not True, not 1.0
            raise DataError(
                f"{path} has partition format version {reprlib.repr(version)}, this fedgossip reads version "
                f"{FORMAT_VERSION}; recreate the partition or use the fedgossip that made it"
            )
        problems = [f"missing key {key!r}" for key in _REQUIRED if key not in raw]
        shards, test = raw.get("shards"), raw.get("test")
        if not problems and not (
            isinstance(shards, list) and all(isinstance(e, dict) for e in [*shards, test])
        ):
            problems.append("shards and test must be objects of file, size and label_histogram")
        if not problems:
            try:
                raw = {
                    **raw,
                    "shards": [ShardInfo(**s) for s in raw["shards"]],
                    "test": ShardInfo(**raw["test"]),
                }
                manifest = cls(**{k: v for k, v in raw.items() if k in _FIELDS})
            except (TypeError, AttributeError) as exc:
                problems.append(f"malformed entry ({exc})")
            else:
                problems.extend(manifest._problems())
        if problems:
            raise DataError(f"{path} is invalid: " + "; ".join(problems) + "; recreate the partition")
        return manifest

    def _problems(self) -> list[str]:
        problems = self._type_problems()
        if not _is_int(self.nodes) or self.nodes != len(self.shards):
            problems.append(f"nodes is {reprlib.repr(self.nodes)} but {len(self.shards)} shards are listed")
        if not self.shards:
            problems.append("a partition needs at least one shard")
        expected = [shard_name(i) for i in range(len(self.shards))]
        if [s.file for s in self.shards] != expected:
            problems.append("shard files must be shard-00000.h5, shard-00001.h5, ... in order")
        if self.test.file != TEST_NAME:
            problems.append(f"test file must be {TEST_NAME}")
        files = self.files if isinstance(self.files, dict) else {}
        # Names come from a file anyone may have edited: nothing may point outside the directory.
        problems += _capped(
            f"file name {reprlib.repr(name)} is not a shard or test file of this directory, "
            f"nor {DISPATCH_NAME}"
            for name in files
            if not (_SHARD_PATTERN.fullmatch(str(name)) or name in (TEST_NAME, DISPATCH_NAME))
        )
        listed = {shard_name(i) for i in range(len(self.shards))} | {TEST_NAME}
        if isinstance(self.files, dict) and set(files) - {DISPATCH_NAME} != listed:
            problems.append("files must give a SHA-256 for every shard and the test file")
        return problems

    def _type_problems(self) -> list[str]:
        """Return a line for every field whose JSON type or range is not what the code relies on."""
        problems = [
            f"{name} must be a string, got {reprlib.repr(value)}"
            for name in ("source", "source_sha256", "scheme", "created_with")
            if not isinstance(value := getattr(self, name), str)
        ]
        if not _is_int(self.seed):
            problems.append(f"seed must be a non-negative integer, got {reprlib.repr(self.seed)}")
        classes = self.classes
        if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
            problems.append("classes must be a non-empty list of class names")
            classes = None
        if not (isinstance(self.input_shape, list) and all(_is_int(d, least=1) for d in self.input_shape)):
            problems.append(
                f"input_shape must be a list of positive integers, got {reprlib.repr(self.input_shape)}"
            )
        fraction = self.test_fraction
        if fraction is not None and not (_is_number(fraction) and 0 < fraction < 1):
            problems.append(
                f"test_fraction must be null or lie between 0 and 1, got {reprlib.repr(fraction)}"
            )
        if not _is_int(self.replication, least=1):
            problems.append(f"replication must be a positive integer, got {reprlib.repr(self.replication)}")
        problems += [
            f"{name} must be a JSON object"
            for name in ("stats", "extra")
            if not isinstance(getattr(self, name), dict)
        ]
        if not isinstance(self.files, dict):
            problems.append("files must be a JSON object of file names and their SHA-256")
        elif not all(isinstance(h, str) and _SHA256_PATTERN.fullmatch(h) for h in self.files.values()):
            problems.append("files must give each file's SHA-256 as 64 lowercase hex digits")
        entries = []
        for where, info in [*((f"shards[{i}]", s) for i, s in enumerate(self.shards)), ("test", self.test)]:
            if not _is_int(info.size):
                entries.append(f"{where}.size must be a non-negative integer, got {reprlib.repr(info.size)}")
            histogram = info.label_histogram
            if not (isinstance(histogram, list) and all(_is_int(count) for count in histogram)):
                entries.append(f"{where}.label_histogram must be a list of non-negative counts")
            elif classes is not None and len(histogram) != len(classes):
                entries.append(
                    f"{where}.label_histogram has {len(histogram)} counts for {len(classes)} classes"
                )
        return problems + _capped(entries)


def _capped(problems: Iterable[str]) -> list[str]:
    """Return the first few ``problems`` and how many more: 10,000 broken shards still make one line."""
    problems = list(problems)
    more = [f"and {len(problems) - _SHOWN} more such problems"] if len(problems) > _SHOWN else []
    return problems[:_SHOWN] + more


def _is_int(value: Any, least: int = 0) -> bool:
    """Return whether ``value`` is a JSON integer (not a boolean) of at least ``least``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_FIELDS = set(Manifest.__dataclass_fields__)
_REQUIRED = [
    name for name, f in Manifest.__dataclass_fields__.items() if name not in ("format_version", "extra")
]
