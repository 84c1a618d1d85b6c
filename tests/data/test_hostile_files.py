"""Damaged and hostile partition files: each one is a DataError naming the file, never a crash or a hang.

A real partition of digits is damaged the ways disks, copies and people damage
files: flipped bytes, cut tails, deleted files, garbage, and forgeries whose
SHA-256 is written back into partition.json so that only the content checks
can catch them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

import fedgossip.data.shards as shards_module
from fedgossip.data.create import PartitionRequest, create_partition
from fedgossip.data.manifest import MANIFEST_NAME, TEST_NAME, shard_name
from fedgossip.data.shards import Partition, file_sha256
from fedgossip.errors import DataError

SHARD = shard_name(1)
CLASSES = 10  # digits


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("hostile") / "digits"
    create_partition(PartitionRequest("digits", "iid", 4, 0), directory)
    return directory


@pytest.fixture
def partition(pristine, tmp_path) -> Path:
    """Return a copy of the pristine partition for one test to damage."""
    return Path(shutil.copytree(pristine, tmp_path / "digits"))


def _read(directory: Path, name: str, verify: bool) -> None:
    opened = Partition(directory)
    if name == TEST_NAME:
        opened.read_test(verify=verify)
    else:
        opened.read_shard(int(name.removeprefix("shard-").removesuffix(".h5")), verify=verify)


# --- damaged data files -------------------------------------------------------------------------


def _flip_middle_byte(name: str) -> Callable[[Path], None]:
    def damage(directory: Path) -> None:
        raw = bytearray((directory / name).read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        (directory / name).write_bytes(bytes(raw))

    return damage


def _cut(name: str, keep: float) -> Callable[[Path], None]:
    def damage(directory: Path) -> None:
        raw = (directory / name).read_bytes()
        (directory / name).write_bytes(raw[: int(len(raw) * keep)])

    return damage


def _delete(name: str) -> Callable[[Path], None]:
    return lambda directory: (directory / name).unlink()


def _record_sha(directory: Path, name: str) -> None:
    """Write ``name``'s new SHA-256 into partition.json, as someone covering their tracks would."""
    path = directory / MANIFEST_NAME
    raw = json.loads(path.read_text())
    raw["files"][name] = file_sha256(directory / name)
    path.write_text(json.dumps(raw))


def _garbage_with_its_sha(name: str) -> Callable[[Path], None]:
    def damage(directory: Path) -> None:
        (directory / name).write_bytes(np.random.default_rng(0).bytes(5000))
        _record_sha(directory, name)

    return damage


def _forged(name: str, edit: Callable[[h5py.File], None]) -> Callable[[Path], None]:
    """Return a damage that edits ``name`` with h5py and records its new SHA-256."""

    def damage(directory: Path) -> None:
        with h5py.File(directory / name, "r+") as handle:
            edit(handle)
        _record_sha(directory, name)

    return damage


def _replace(handle: h5py.File, key: str, **dataset) -> None:
    """Replace dataset ``key`` by ``create_dataset(key, **dataset)``; by a group if ``dataset`` is empty."""
    del handle[key]
    if dataset:
        handle.create_dataset(key, **dataset)
    else:
        handle.create_group(key)


# (damage, the file it damages, whether a read without verification may miss it)
DAMAGED = {
    "shard-with-a-flipped-byte": (_flip_middle_byte(SHARD), SHARD, True),  # may land in the pixels
    "shard-with-its-tail-cut": (_cut(SHARD, 0.99), SHARD, False),
    "shard-cut-in-half": (_cut(SHARD, 0.5), SHARD, False),
    "shard-deleted": (_delete(SHARD), SHARD, False),
    "test-truncated": (_cut(TEST_NAME, 0.5), TEST_NAME, False),
    "test-deleted": (_delete(TEST_NAME), TEST_NAME, False),
    "shard-of-garbage-with-its-sha": (_garbage_with_its_sha(SHARD), SHARD, False),
    "test-of-garbage-with-its-sha": (_garbage_with_its_sha(TEST_NAME), TEST_NAME, False),
    "labels-outside-the-classes": (
        _forged(SHARD, lambda h: _replace(h, "y", data=np.full(h["y"].shape, CLASSES))),
        SHARD,
        False,
    ),
    "negative-labels": (
        _forged(TEST_NAME, lambda h: _replace(h, "y", data=np.full(h["y"].shape, -1))),
        TEST_NAME,
        False,
    ),
    "x-is-a-group": (_forged(SHARD, lambda h: _replace(h, "x")), SHARD, False),
    "x-holds-strings": (
        _forged(SHARD, lambda h: _replace(h, "x", data=np.full(h["x"].shape, b"abc"))),
        SHARD,
        False,
    ),
    "x-claims-a-billion-samples": (  # reading it would ask for 256 GB
        _forged(SHARD, lambda h: _replace(h, "x", shape=(10**9, 1, 8, 8), dtype="f4", chunks=(1, 1, 8, 8))),
        SHARD,
        False,
    ),
    "x-of-another-input-shape": (
        _forged(SHARD, lambda h: _replace(h, "x", data=h["x"][...].reshape(len(h["x"]), 64))),
        SHARD,
        False,
    ),
    "one-label-fewer-than-listed": (
        _forged(SHARD, lambda h: _replace(h, "y", data=h["y"][:-1])),
        SHARD,
        False,
    ),
    "index-missing": (_forged(SHARD, lambda h: h.__delitem__("index")), SHARD, False),
    "labels-of-2.5": (  # an int64 cast would silently make it 2
        _forged(SHARD, lambda h: _replace(h, "y", data=np.where(np.arange(len(h["y"])) == 0, 2.5, 1.0))),
        SHARD,
        False,
    ),
    "labels-of-nan": (
        _forged(TEST_NAME, lambda h: _replace(h, "y", data=np.full(h["y"].shape, np.nan))),
        TEST_NAME,
        False,
    ),
    "index-of-0.5": (
        _forged(SHARD, lambda h: _replace(h, "index", data=h["index"][...] + 0.5)),
        SHARD,
        False,
    ),
    "x-complex": (  # a float32 cast would drop the imaginary part with a raw numpy warning
        _forged(SHARD, lambda h: _replace(h, "x", data=h["x"][...].astype(np.complex64) + 1j)),
        SHARD,
        False,
    ),
    "x-with-one-nan": (_forged(SHARD, lambda h: h["x"].__setitem__((0, 0, 0, 0), np.nan)), SHARD, False),
    "test-x-with-nan": (  # evaluated on, it would make a "completed" run of 10% accuracy
        _forged(TEST_NAME, lambda h: h["x"].__setitem__(slice(None), np.nan)),
        TEST_NAME,
        False,
    ),
    "test-x-with-inf": (
        _forged(TEST_NAME, lambda h: h["x"].__setitem__((3, 0, 0, 0), -np.inf)),
        TEST_NAME,
        False,
    ),
    "x-beyond-float32": (  # finite in float64, infinite once cast to the float32 models train in
        _forged(SHARD, lambda h: _replace(h, "x", data=np.full(h["x"].shape, 1e300))),
        SHARD,
        False,
    ),
}


@pytest.mark.parametrize("case", DAMAGED)
def test_damaged_file_is_refused_by_a_verified_read(partition, case):
    damage, name, _ = DAMAGED[case]
    damage(partition)
    with pytest.raises(DataError, match=rf"{re.escape(name)}.*recreate the partition") as caught:
        _read(partition, name, verify=True)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("case", [case for case, (_, _, may_miss) in DAMAGED.items() if not may_miss])
def test_damaged_file_is_refused_without_verification(partition, case):
    damage, name, _ = DAMAGED[case]
    damage(partition)
    with pytest.raises(DataError, match=rf"{re.escape(name)}.*recreate the partition") as caught:
        _read(partition, name, verify=False)
    assert "\n" not in str(caught.value)


def _declare_samples(name: str, count: int, chunked: bool) -> Callable[[Path], None]:
    """Return a damage making ``name`` and partition.json agree on ``count`` samples never written.

    HDF5 allocates storage on the first write, so the file stays small: only the
    datasets' shapes claim the samples, and reading them would allocate every one.
    """

    def damage(directory: Path) -> None:
        with h5py.File(directory / name, "r+") as handle:
            for key in [key for key in ("x", "y", "index") if key in handle]:
                tail, dtype = handle[key].shape[1:], handle[key].dtype
                chunks = (1, *tail) if chunked else None
                _replace(handle, key, shape=(count, *tail), dtype=dtype, chunks=chunks)
        _record_sha(directory, name)
        path = directory / MANIFEST_NAME
        raw = json.loads(path.read_text())
        entry = raw["test"] if name == TEST_NAME else raw["shards"][int(name[6:11])]
        entry["size"] = count
        entry["label_histogram"][0] += count - sum(entry["label_histogram"])
        path.write_text(json.dumps(raw))

    return damage


@pytest.mark.parametrize(
    ("name", "count", "chunked"),
    [(TEST_NAME, 10**12, True), (SHARD, 10**12, False), (SHARD, 10**6, True), (TEST_NAME, 10**5, False)],
)
def test_samples_declared_but_never_written_are_refused_before_allocating(partition, name, count, chunked):
    _declare_samples(name, count, chunked)(partition)
    with pytest.raises(DataError, match=rf"{re.escape(name)}.*recreate the partition") as caught:
        _read(partition, name, verify=True)
    assert "\n" not in str(caught.value) and f"{count:,}" in str(caught.value)


NOT_REGULAR = {
    "a-fifo": (os.mkfifo, "is not a regular file (it is a FIFO)"),  # HDF5 would wait for a writer forever
    "linked-to-dev-zero": (lambda p: p.symlink_to("/dev/zero"), "is not a regular file (it is a character"),
    "a-directory": (Path.mkdir, "is not a regular file (it is a directory)"),
}


@pytest.mark.parametrize("verify", [True, False])
@pytest.mark.parametrize("name", [SHARD, TEST_NAME])
@pytest.mark.parametrize("case", NOT_REGULAR)
def test_a_data_file_that_is_not_a_regular_file_is_refused_without_waiting(partition, case, name, verify):
    make, message = NOT_REGULAR[case]
    (partition / name).unlink()
    make(partition / name)
    read = f"read_test(verify={verify})" if name == TEST_NAME else f"read_shard(1, verify={verify})"
    script = (
        "from fedgossip.data.shards import Partition\n"
        "from fedgossip.errors import DataError\n"
        f"try:\n    Partition({str(partition)!r}).{read}\nexcept DataError as exc:\n    print(exc)\n"
    )
    # In a subprocess with a timeout: a reader that waits on the FIFO fails the test, not the suite.
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"{name} {message}" in result.stdout and "recreate the partition" in result.stdout


def test_verify_names_every_damaged_file(partition):
    _flip_middle_byte(SHARD)(partition)
    _delete(TEST_NAME)(partition)
    with pytest.raises(DataError, match=rf"{SHARD} is corrupted.*{TEST_NAME} is missing"):
        Partition(partition).verify()


def test_the_undamaged_shards_still_read(partition):
    _flip_middle_byte(SHARD)(partition)
    assert len(Partition(partition).read_shard(0).y) > 0


def test_a_shard_that_cannot_be_opened_is_named(partition, monkeypatch):
    def denied(path: Path) -> str:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(shards_module, "file_sha256", denied)
    with pytest.raises(DataError, match=rf"{SHARD} cannot be read \(Permission denied\)"):
        Partition(partition).read_shard(1)


# --- hostile partition.json ---------------------------------------------------------------------


def _text(make: Callable[[str], str | bytes]) -> Callable[[Path], None]:
    """Return a damage that rewrites partition.json's text (or bytes) with ``make(old text)``."""

    def damage(directory: Path) -> None:
        path = directory / MANIFEST_NAME
        new = make(path.read_text())
        path.write_bytes(new if isinstance(new, bytes) else new.encode())

    return damage


def _json(edit: Callable[[dict], object]) -> Callable[[Path], None]:
    """Return a damage that applies ``edit`` to partition.json's parsed content."""

    def damage(directory: Path) -> None:
        path = directory / MANIFEST_NAME
        raw = json.loads(path.read_text())
        edit(raw)
        path.write_text(json.dumps(raw))

    return damage


def _rename_file(old: str, new: str) -> Callable[[Path], None]:
    return _json(lambda m: m["files"].update({new: m["files"].pop(old)}))


def _replace_by(make: Callable[[Path], None]) -> Callable[[Path], None]:
    def damage(directory: Path) -> None:
        (directory / MANIFEST_NAME).unlink()
        make(directory / MANIFEST_NAME)

    return damage


def _touch(path: Path) -> Path:
    path.touch()
    return path


MANIFESTS = {
    "truncated": (_text(lambda t: t[: len(t) // 2]), "is not readable JSON"),
    "not-utf-8": (_text(lambda t: b"\xff\xfe" + t.encode()), "is not readable JSON"),
    "nested-a-million-deep": (_text(lambda t: "[" * 10**6 + "]" * 10**6), "is not readable JSON"),
    "a-4301-digit-number": (_text(lambda t: t.replace('"seed": 0', '"seed": ' + "9" * 4301)), "not readable"),
    "not-an-object": (_text(lambda t: "[1, 2]"), "must hold a JSON object"),
    "deleted": (_replace_by(lambda p: None), "is missing"),
    "a-directory": (_replace_by(Path.mkdir), "is not a regular file"),
    "a-fifo-nobody-writes": (_replace_by(os.mkfifo), "is not a regular file"),  # reading it would hang
    "linked-to-dev-zero": (_replace_by(lambda p: p.symlink_to("/dev/zero")), "is not a regular file"),
    "sparse-beyond-the-cap": (
        _replace_by(lambda p: os.truncate(_touch(p), (256 << 20) + 1)),
        "holds 256.0 MiB",
    ),
    "format-version-2": (_json(lambda m: m.update(format_version=2)), "format version 2"),
    "format-version-true": (_json(lambda m: m.update(format_version=True)), "format version True"),
    "missing-key": (_json(lambda m: m.pop("files")), "missing key 'files'"),
    "size-a-string": (
        _json(lambda m: m["shards"][0].update(size="360")),
        "shards[0].size must be a non-negative integer, got '360'",
    ),
    "size-negative": (_json(lambda m: m["test"].update(size=-1)), "test.size must be a non-negative integer"),
    "histogram-of-3-classes": (
        _json(lambda m: m["shards"][2].update(label_histogram=[1, 2, 3])),
        "shards[2].label_histogram has 3 counts for 10 classes",
    ),
    "histogram-not-a-list": (
        _json(lambda m: m["shards"][0].update(label_histogram="many")),
        "shards[0].label_histogram must be a list of non-negative counts",
    ),
    "shard-entry-not-an-object": (
        _json(lambda m: m["shards"].__setitem__(0, "shard-00000.h5")),
        "must be objects",
    ),
    "shard-entry-with-an-unknown-key": (
        _json(lambda m: m["shards"][0].update(owner="me")),
        "malformed entry",
    ),
    "no-shards": (
        _json(lambda m: m.update(nodes=0, shards=[], files={TEST_NAME: m["files"][TEST_NAME]})),
        "a partition needs at least one shard",
    ),
    "nodes-a-string": (_json(lambda m: m.update(nodes="4")), "nodes is '4' but 4 shards are listed"),
    "replication-zero": (_json(lambda m: m.update(replication=0)), "replication must be a positive integer"),
    "input-shape-a-number": (_json(lambda m: m.update(input_shape=64)), "input_shape must be a list"),
    "no-classes": (_json(lambda m: m.update(classes=[])), "classes must be a non-empty list"),
    "test-fraction-2": (_json(lambda m: m.update(test_fraction=2)), "test_fraction must be null or lie"),
    "files-a-list": (_json(lambda m: m.update(files=list(m["files"]))), "files must be a JSON object"),
    "sha-not-hex": (_json(lambda m: m["files"].update({SHARD: "x" * 64})), "as 64 lowercase hex digits"),
    "file-in-the-parent": (_rename_file(SHARD, "../x.h5"), "file name '../x.h5' is not a shard or test file"),
    "absolute-file": (
        _json(lambda m: m["files"].update({"/etc/passwd": "0" * 64})),
        "file name '/etc/passwd' is not a shard or test file",
    ),
    "shard-name-then-dot-dot": (
        _rename_file(SHARD, "shard-00001.h5/../../x"),
        "file name 'shard-00001.h5/../../x' is not a shard",
    ),
    "shard-name-then-newline": (
        _rename_file(SHARD, SHARD + "\n"),
        r"file name 'shard-00001.h5\n' is not a shard",
    ),
    "shard-entry-in-the-parent": (
        _json(lambda m: m["shards"][1].update(file="../x.h5")),
        "shard files must be shard-00000.h5",
    ),
}


@pytest.mark.parametrize("case", MANIFESTS)
def test_hostile_manifest_is_refused_naming_it(partition, case):
    damage, message = MANIFESTS[case]
    damage(partition)
    with pytest.raises(DataError) as caught:
        Partition(partition)
    text = str(caught.value)
    assert str(partition / MANIFEST_NAME) in text and message in text
    assert "recreate the partition" in text or "fedgossip partition create" in text
    assert len(text) < 1000 and "\n" not in text


def test_thousands_of_broken_shard_entries_still_make_one_short_message(partition):
    _json(lambda m: m.update(shards=[dict(shard, size="many") for shard in m["shards"] * 1000]))(partition)
    with pytest.raises(DataError, match=r"shards\[0\]\.size .* and \d+ more such problems") as caught:
        Partition(partition)
    assert len(str(caught.value)) < 1000
