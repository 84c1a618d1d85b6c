"""``partition.json``: what a partition directory holds, and the checks that make it trustworthy.

The manifest is the only file read before any shard is opened, so it is checked
strictly: every required key, the format version, and file names that cannot
point outside the directory.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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
_SHARD_PATTERN = re.compile(r"^shard-\d{5}\.h5$")


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
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise DataError(
                f"{path} is missing, so {directory} is not a partition directory; "
                "make one with `fedgossip partition create`"
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{path} is not readable JSON ({exc}); recreate the partition") from exc
        return cls.from_dict(raw, path)

    @classmethod
    def from_dict(cls, raw: Any, path: Path) -> Manifest:
        """Build a manifest from parsed JSON, reporting every problem found."""
        if not isinstance(raw, dict):
            raise DataError(f"{path} must hold a JSON object; recreate the partition")
        version = raw.get("format_version")
        if version != FORMAT_VERSION:
            raise DataError(
                f"{path} has partition format version {version!r}, this fedgossip reads version "
                f"{FORMAT_VERSION}; recreate the partition or use the fedgossip that made it"
            )
        problems = [f"missing key {key!r}" for key in _REQUIRED if key not in raw]
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
        problems = []
        if not isinstance(self.nodes, int) or self.nodes != len(self.shards):
            problems.append(f"nodes is {self.nodes!r} but {len(self.shards)} shards are listed")
        expected = [shard_name(i) for i in range(len(self.shards))]
        if [s.file for s in self.shards] != expected:
            problems.append("shard files must be shard-00000.h5, shard-00001.h5, ... in order")
        if self.test.file != TEST_NAME:
            problems.append(f"test file must be {TEST_NAME}")
        for name in self.files:
            # Names come from a file anyone may have edited: nothing may point outside the directory.
            if not (_SHARD_PATTERN.match(name) or name in (TEST_NAME, DISPATCH_NAME)):
                problems.append(
                    f"file name {name!r} is not a shard or test file of this directory, nor {DISPATCH_NAME}"
                )
        listed = {s.file for s in self.shards} | {TEST_NAME}
        if set(self.files) - {DISPATCH_NAME} != listed:
            problems.append("files must give a SHA-256 for every shard and the test file")
        return problems


_FIELDS = set(Manifest.__dataclass_fields__)
_REQUIRED = [
    name for name, f in Manifest.__dataclass_fields__.items() if name not in ("format_version", "extra")
]
