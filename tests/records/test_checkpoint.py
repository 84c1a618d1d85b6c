"""Checkpoints: every rank's state comes back exactly, and nothing damaged or foreign is ever resumed from."""

import enum
import errno
import hashlib
import json
import os
import re
from dataclasses import asdict

import h5py
import numpy as np
import pytest
import torch

from fedgossip.errors import DataError
from fedgossip.records import MetricsWriter, create_run_dir, read_metrics, read_run_json, write_run_json
from fedgossip.records import checkpoint as checkpoint_module
from fedgossip.records.checkpoint import (
    CheckpointError,
    CheckpointInfo,
    check_writable,
    checkpoint_path,
    commit_checkpoint,
    latest_checkpoint,
    pack_state,
    read_rank_checkpoint,
    unpack_state,
    write_rank_checkpoint,
)

RANKS = 2


@pytest.fixture
def run_dir(tmp_path):
    """Return a fresh run directory with its run.json, as rank 0 makes it."""
    run_dir = create_run_dir(tmp_path, "run")
    write_run_json(run_dir, {"name": "run", "status": "running"})
    return run_dir


def realistic_state(rank=0):
    """Return what a rank saves: model, optimizer, generators, counters, plugins' bookkeeping."""
    model = torch.nn.Linear(3, 2)
    torch.nn.utils.vector_to_parameters(torch.linspace(-1, 1, 8) + rank, model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.ones(4, 3)).sum().backward()
    optimizer.step()
    numpy_rng = np.random.default_rng(7 + rank)
    numpy_rng.random(5)
    torch_rng = torch.Generator().manual_seed(11 + rank)
    torch.rand(3, generator=torch_rng)
    return {
        "model": torch.nn.utils.parameters_to_vector(model.parameters()).detach(),
        "optimizer": optimizer.state_dict(),
        "order": np.arange(10, dtype=np.int64)[::-1],  # not contiguous
        "hidden": np.array([True, False, True]),
        "residual": np.linspace(0, 1, 6, dtype=np.float64).reshape(2, 3),
        "big_endian": np.array([1.5, 2.5], dtype=">f8"),
        "scalar_array": np.array(3.25),
        "rng": numpy_rng.bit_generator.state,  # PCG64: 128-bit Python ints
        "mt_rng": np.random.MT19937(5).state,  # an array inside a generator state
        "torch_rng": torch_rng.get_state(),
        "counters": {"loss_sum": 1.25, "samples": np.int64(640), "compute_s": np.float32(0.5)},
        "huge": 2**127 + 3,
        "negative_huge": -(2**200),
        "plugins": [None, {"received": [np.array([1, 2], dtype=np.int32), (1, "a")]}],
        "pair": (0.9, 0.999),
        "by_round": {3: "x", 10: b"raw"},
        "nothing": None,
    }


def assert_same(got, want, where="state"):
    """Assert ``got`` equals ``want`` down to dtypes, except that numpy scalars come back as Python ones."""
    if isinstance(want, np.generic):
        want = want.item()
    if isinstance(want, dict):
        assert type(got) is dict and list(got) == list(want), where
        for key in want:
            assert_same(got[key], want[key], f"{where}[{key!r}]")
    elif isinstance(want, (list, tuple)):
        assert type(got) is type(want) and len(got) == len(want), where
        for index, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_same(a, b, f"{where}[{index}]")
    elif isinstance(want, torch.Tensor):
        assert isinstance(got, torch.Tensor) and got.dtype == want.dtype and torch.equal(got, want), where
    elif isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray) and got.shape == want.shape, where
        assert got.dtype == want.dtype.newbyteorder("=") and np.array_equal(got, want), where
    else:
        assert type(got) is type(want) and got == want, where


def commit_round(run_dir, round, evaluations=0, wall_s=1.0):
    """Write every rank's realistic state of ``round`` and commit it, as the training loop does."""
    hashes = [write_rank_checkpoint(run_dir, round, rank, realistic_state(rank)) for rank in range(RANKS)]
    commit_checkpoint(run_dir, round, evaluations, wall_s, hashes, RANKS)
    return hashes


def leftovers(directory):
    """Return every temporary file under ``directory``."""
    return sorted(p.name for p in directory.rglob("*") if ".partial" in p.name or "write-test" in p.name)


# --- packing: tensors, arrays and plain data only ------------------------------------------------


def test_a_realistic_state_round_trips_through_a_checkpoint(run_dir):
    want = realistic_state()
    commit_round(run_dir, 5)
    got = read_rank_checkpoint(run_dir, latest_checkpoint(run_dir), 0)
    assert_same(got, want)


def test_restored_generators_continue_the_same_sequence(run_dir):
    numpy_rng, torch_rng = np.random.default_rng(3), torch.Generator().manual_seed(3)
    state = {"numpy": numpy_rng.bit_generator.state, "torch": torch_rng.get_state()}
    digest = write_rank_checkpoint(run_dir, 1, 0, state)
    commit_checkpoint(run_dir, 1, 0, 0.0, [digest], 1)
    restored = read_rank_checkpoint(run_dir, latest_checkpoint(run_dir), 0)
    numpy_again, torch_again = np.random.default_rng(), torch.Generator()
    numpy_again.bit_generator.state = restored["numpy"]
    torch_again.set_state(restored["torch"])
    assert np.array_equal(numpy_again.random(4), numpy_rng.random(4))
    assert torch.equal(torch.rand(4, generator=torch_again), torch.rand(4, generator=torch_rng))


# torch has tensors of uint16, uint32 and uint64 since 2.3; before, pack_state refuses those arrays
_WIDE_UNSIGNED = pytest.mark.skipif(not hasattr(torch, "uint16"), reason="torch < 2.3 has no such tensors")


@pytest.mark.parametrize(
    "dtype",
    ["bool", "int8", "uint8", "int16", "int32", "int64", "float16", "float32", "float64", "complex64",
     "complex128", *(pytest.param(name, marks=_WIDE_UNSIGNED) for name in ("uint16", "uint32", "uint64"))],
)  # fmt: skip
def test_arrays_keep_their_dtype_and_shape(dtype):
    array = np.arange(6).reshape(3, 2, 1).astype(dtype)
    unpacked = unpack_state(pack_state({"a": array}))["a"]
    assert unpacked.dtype == array.dtype and unpacked.shape == array.shape
    assert np.array_equal(unpacked, array)


def test_packing_copies_arrays_so_the_caller_keeps_its_own():
    array = np.zeros(3)
    packed = pack_state({"a": array})
    array[0] = 1.0
    assert unpack_state(packed)["a"].tolist() == [0.0, 0.0, 0.0]


class Colour(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize(
    ("state", "where"),
    [
        ({"a": object()}, r"state\['a'\]"),
        ({"a": {"b": [1, {2, 3}]}}, r"state\['a'\]\['b'\]\[1\]"),
        ({"f": lambda: None}, r"state\['f'\]"),
        ({"c": Colour.RED}, r"state\['c'\]"),
        ({"o": np.array([object()])}, r"state\['o'\].*dtype object"),
        ({"s": np.array(["text"])}, r"state\['s'\].*dtype <U4"),
        ({"t": np.datetime64("2024-01-01")}, r"state\['t'\]"),
        ({"k": {(1, 2): 0}}, r"state\['k'\].*key \(1, 2\)"),
        ({"k": {"__ndarray__": 0}}, r"state\['k'\].*__ndarray__"),
    ],
)
def test_anything_but_tensors_arrays_and_plain_data_is_refused_naming_its_key(state, where):
    with pytest.raises(TypeError, match=where):
        pack_state(state)


def test_a_refused_state_writes_nothing(run_dir):
    with pytest.raises(TypeError, match=r"state\['bad'\]"):
        write_rank_checkpoint(run_dir, 1, 0, {"good": torch.ones(2), "bad": object()})
    assert not (run_dir / "checkpoints").exists()


# --- writing and committing ----------------------------------------------------------------------


def test_the_returned_hash_is_the_hash_of_the_file(run_dir):
    digest = write_rank_checkpoint(run_dir, 7, 1, realistic_state())
    path = checkpoint_path(run_dir, 7, 1)
    assert path == run_dir / "checkpoints" / "round-000007" / "rank-00001.pt"
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert leftovers(run_dir) == []


def test_commit_records_the_checkpoint_in_latest_json_and_run_json(run_dir):
    hashes = commit_round(run_dir, 10, evaluations=4, wall_s=12.5)
    info = latest_checkpoint(run_dir)
    assert (info.round, info.evaluations, info.wall_s, info.world_size) == (10, 4, 12.5, RANKS)
    assert info.hashes == tuple(hashes)
    latest = json.loads((run_dir / "checkpoints" / "latest.json").read_text())
    assert latest["format_version"] == 1 and latest["hashes"] == hashes
    recorded = read_run_json(run_dir)["checkpoint"]
    assert recorded == {
        "round": 10,
        "evaluations": 4,
        "wall_s": 12.5,
        "world_size": RANKS,
        "written_at": info.written_at,
    }
    assert read_run_json(run_dir)["status"] == "running"


def test_commit_deletes_older_rounds_and_keeps_the_committed_and_newer_ones(run_dir):
    commit_round(run_dir, 5)
    commit_round(run_dir, 10)
    write_rank_checkpoint(run_dir, 15, 0, realistic_state())  # rank 1 never got to write round 15
    commit_round(run_dir, 10)  # commits are idempotent
    rounds = sorted(p.name for p in (run_dir / "checkpoints").iterdir() if p.is_dir())
    assert rounds == ["round-000010", "round-000015"]
    assert latest_checkpoint(run_dir).round == 10


def test_the_info_travels_as_plain_data(run_dir):
    commit_round(run_dir, 3)
    info = latest_checkpoint(run_dir)
    # the training loop broadcasts it as a dict and rebuilds it on every rank
    assert CheckpointInfo(**asdict(info)) == info


@pytest.mark.parametrize(
    ("hashes", "world_size", "message"),
    [
        (["0" * 64], 2, r"one SHA-256 per rank \(2\), got 1"),
        (["0" * 64, "nope"], 2, "hash of rank 1 is not a SHA-256"),
        ([], 0, "world_size must be at least 1"),
    ],
)
def test_a_commit_with_wrong_hashes_is_refused(run_dir, hashes, world_size, message):
    with pytest.raises(ValueError, match=message):
        commit_checkpoint(run_dir, 1, 0, 0.0, hashes, world_size)
    assert latest_checkpoint(run_dir) is None


# --- a full or read-only disk --------------------------------------------------------------------


def test_a_full_disk_is_a_checkpoint_error_and_the_committed_checkpoint_survives(run_dir, monkeypatch):
    commit_round(run_dir, 5)

    def full_disk(obj, stream):
        stream.write(b"PK\x03\x04 half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(CheckpointError, match=r"rank-00000\.pt \(No space left on device\); free space"):
        write_rank_checkpoint(run_dir, 10, 0, realistic_state())
    monkeypatch.undo()
    assert leftovers(run_dir) == [] and not checkpoint_path(run_dir, 10, 0).exists()
    info = latest_checkpoint(run_dir)
    assert info.round == 5
    assert_same(read_rank_checkpoint(run_dir, info, 1), realistic_state(1))


def test_a_disk_that_fills_up_part_way_through_torch_save_is_a_checkpoint_error(run_dir, monkeypatch):
    # torch.save itself turns a failed write into a RuntimeError; the errno must survive it.
    real_open = open

    class FillingFile:
        def __init__(self, path, mode):
            self._file, self._room = real_open(path, mode), 300

        def write(self, data):
            if len(data) > self._room:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self._room -= len(data)
            return self._file.write(data)

        def __getattr__(self, name):
            return getattr(self._file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._file.close()

    monkeypatch.setattr(checkpoint_module, "open", FillingFile, raising=False)
    with pytest.raises(CheckpointError, match="No space left on device"):
        write_rank_checkpoint(run_dir, 1, 0, {"model": torch.zeros(10_000)})
    assert leftovers(run_dir) == [] and not checkpoint_path(run_dir, 1, 0).exists()


def test_a_failed_rename_leaves_no_temporary_file(run_dir, monkeypatch):
    def refused(src, dst):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(CheckpointError, match=r"Permission denied.*writable"):
        write_rank_checkpoint(run_dir, 1, 0, realistic_state())
    assert leftovers(run_dir) == []


def test_check_writable_creates_nothing_and_leaves_nothing(tmp_path):
    check_writable(tmp_path / "new" / "checkpoints", 1024)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    check_writable(tmp_path / "run" / "checkpoints", 1024)
    assert list((tmp_path / "run" / "checkpoints").iterdir()) == []


def test_check_writable_probes_the_nearest_existing_parent(tmp_path, monkeypatch):
    probed = []
    real = checkpoint_module.tempfile.mkstemp
    monkeypatch.setattr(
        checkpoint_module.tempfile, "mkstemp", lambda **kw: probed.append(kw["dir"]) or real(**kw)
    )
    check_writable(tmp_path / "run" / "checkpoints", 1)
    assert probed == [tmp_path]


def test_latest_checkpoint_of_a_run_without_checkpoints_is_none(run_dir):
    assert not (run_dir / "checkpoints").exists()
    assert latest_checkpoint(run_dir) is None


def test_check_writable_refuses_a_disk_without_room(tmp_path):
    with pytest.raises(
        CheckpointError, match=rf"{re.escape(str(tmp_path))} has .* free, but .* need about 8192\.0 TiB"
    ):
        check_writable(tmp_path, 2**53)


def test_check_writable_refuses_a_read_only_directory(tmp_path):
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        try:
            (directory / "probe").touch()
        except PermissionError:
            pass
        else:
            pytest.skip("this user (root) can write into read-only directories")
        with pytest.raises(
            CheckpointError, match=rf"in {re.escape(str(directory))} \(Permission denied\); make"
        ):
            check_writable(directory, 1)
    finally:
        directory.chmod(0o700)


def test_check_writable_names_a_refused_write_and_its_fix(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(checkpoint_module.tempfile, "mkstemp", read_only)
    with pytest.raises(
        CheckpointError, match=rf"{re.escape(str(tmp_path))} \(Read-only file system\); .*another --out"
    ):
        check_writable(tmp_path, 1)


# --- reading back: only what was committed, intact -----------------------------------------------


def test_no_latest_json_means_no_checkpoint(run_dir):
    write_rank_checkpoint(run_dir, 5, 0, realistic_state())  # written, never committed
    assert latest_checkpoint(run_dir) is None


def damage(path, how):
    data = path.read_bytes()
    if how == "flipped":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    elif how == "truncated":
        path.write_bytes(data[: len(data) - 100])
    else:
        path.unlink()


@pytest.mark.parametrize(
    ("how", "message"),
    [("flipped", "is corrupted"), ("truncated", "is corrupted"), ("missing", "is missing")],
)
def test_a_damaged_rank_file_is_a_data_error_naming_it(run_dir, how, message):
    commit_round(run_dir, 5)
    path = checkpoint_path(run_dir, 5, 1)
    damage(path, how)
    with pytest.raises(DataError, match=rf"{re.escape(str(path))} {message}.*start a new run"):
        read_rank_checkpoint(run_dir, latest_checkpoint(run_dir), 1)
    read_rank_checkpoint(run_dir, latest_checkpoint(run_dir), 0)  # the other rank is fine


class Payload:
    def __reduce__(self):
        return (print, ("this ran while loading a checkpoint",))


def test_a_file_holding_an_object_is_refused_even_with_the_right_hash(run_dir):
    path = checkpoint_path(run_dir, 1, 0)
    path.parent.mkdir(parents=True)
    torch.save({"format_version": 1, "round": 1, "rank": 0, "state": {"x": Payload()}}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    commit_checkpoint(run_dir, 1, 0, 0.0, [digest], 1)
    with pytest.raises(DataError, match=rf"{re.escape(str(path))} is not a readable checkpoint"):
        read_rank_checkpoint(run_dir, latest_checkpoint(run_dir), 0)


def test_a_file_of_another_rank_is_refused(run_dir):
    digest = write_rank_checkpoint(run_dir, 1, 1, {"a": 1})
    os.replace(checkpoint_path(run_dir, 1, 1), checkpoint_path(run_dir, 1, 0))
    commit_checkpoint(run_dir, 1, 0, 0.0, [digest, digest], 2)
    with pytest.raises(DataError, match="is not the checkpoint of rank 0 after round 1"):
        read_rank_checkpoint(run_dir, latest_checkpoint(run_dir), 0)


def test_reading_a_rank_outside_the_checkpoint_is_refused(run_dir):
    commit_round(run_dir, 1)
    with pytest.raises(ValueError, match=r"rank in range\(2\)"):
        read_rank_checkpoint(run_dir, latest_checkpoint(run_dir), 2)


def rewrite_latest(run_dir, change):
    path = run_dir / "checkpoints" / "latest.json"
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(format_version=2), "checkpoint format version 2, this fedgossip reads version 1"),
        (lambda r: r.pop("format_version"), "checkpoint format version None"),
        (lambda r: r.pop("round"), "missing key 'round'"),
        (lambda r: r.update(extra=1), "unexpected key 'extra'"),
        (lambda r: r.update(world_size=3), r"one SHA-256 per rank \(3\), got 2"),
        (lambda r: r["hashes"].__setitem__(0, "xyz"), "hash of rank 0 is not a SHA-256"),
        (lambda r: r.update(round=-1, wall_s="soon"), "round must be .*; wall_s must be"),
    ],
)
def test_a_bad_latest_json_is_a_data_error_naming_it(run_dir, change, message):
    commit_round(run_dir, 5)
    rewrite_latest(run_dir, change)
    with pytest.raises(DataError, match=rf"latest\.json .*{message}"):
        latest_checkpoint(run_dir)


def test_a_latest_json_claiming_fewer_ranks_than_wrote_the_round_is_refused(run_dir):
    # world_size and hashes cut to rank 0 alone: consistent in itself, but rank 1's file is there
    commit_round(run_dir, 5)
    rewrite_latest(run_dir, lambda r: r.update(world_size=1, hashes=r["hashes"][:1]))
    with pytest.raises(DataError, match=r"latest\.json says 1 rank wrote round 5, but .*rank-00001\.pt"):
        latest_checkpoint(run_dir)


def test_a_rank_state_of_another_world_size_is_refused(run_dir):
    from mpi4py import MPI

    from fedgossip.run.checkpointing import restore_rank

    comm = MPI.COMM_WORLD  # one rank under pytest; the state says it was one of two
    state = {
        "format": 2,
        "round": 5,
        "rank": 0,
        "world_size": comm.Get_size() + 1,
        "node_ids": [],
        "nodes": [],
    }
    with pytest.raises(DataError, match=rf"written by a job of {comm.Get_size() + 1} ranks, this one has"):
        restore_rank([], comm, state)


@pytest.mark.parametrize(("text", "message"), [("{not json", "is not readable JSON"), ("[1]", "JSON object")])
def test_an_unreadable_latest_json_is_a_data_error_naming_it(run_dir, text, message):
    path = run_dir / "checkpoints" / "latest.json"
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(DataError, match=rf"{re.escape(str(path))} .*{message}.*start a new run"):
        latest_checkpoint(run_dir)


# --- metrics.h5: rows written after the checkpoint are dropped -----------------------------------


def write_metrics(run_dir, evals):
    writer = MetricsWriter(run_dir, RANKS)
    for row in range(evals):
        scalars = {"gap": float(row)} if row < 3 else {"gap": float(row), "late": 1.0}
        writer.append(row + 1, 0.5 * (row + 1), {"acc": [row, row + 0.5]}, scalars)
    return writer


def test_truncate_drops_the_rows_after_the_checkpoint_and_appending_carries_on(run_dir):
    write_metrics(run_dir, 5)
    writer = MetricsWriter(run_dir, RANKS)  # a resumed run reopens the file
    writer.truncate(2)
    assert writer.evals == 2
    read = read_metrics(run_dir)
    assert read["round"].tolist() == [1, 2] and read["acc"].tolist() == [[0, 0.5], [1, 1.5]]
    with h5py.File(run_dir / "metrics.h5", "r") as handle:
        assert all(dataset.shape[0] == 2 for dataset in handle.values())
        assert handle.attrs["evals"] == 2 and handle.attrs["seq"] == 4
    writer.append(3, 1.5, {"acc": [7, 8]}, {"gap": 9.0})
    read = read_metrics(run_dir)
    assert read["round"].tolist() == [1, 2, 3] and read["gap"].tolist() == [0.0, 1.0, 9.0]
    assert read["acc"][2].tolist() == [7, 8] and MetricsWriter(run_dir, RANKS).evals == 3


def test_truncate_holds_the_seqlock_while_it_resizes(run_dir, monkeypatch):
    write_metrics(run_dir, 4)
    seen = []
    real_resize = h5py.Dataset.resize

    def watched_resize(self, size, axis=None):
        seen.append(int(self.file.attrs["seq"]))
        return real_resize(self, size, axis)

    monkeypatch.setattr(h5py.Dataset, "resize", watched_resize)
    MetricsWriter(run_dir, RANKS).truncate(1)
    assert seen and all(seq % 2 == 1 for seq in seen)


def test_truncate_to_nothing_then_append(run_dir):
    writer = write_metrics(run_dir, 2)
    writer.truncate(0)
    assert {name: len(values) for name, values in read_metrics(run_dir).items()} == dict.fromkeys(
        ["acc", "gap", "round", "wall_time"], 0
    )
    writer.append(1, 0.5, {"acc": [1, 2]}, {})
    assert read_metrics(run_dir)["acc"].tolist() == [[1, 2]]


def test_truncate_to_every_row_leaves_the_file_untouched(run_dir):
    write_metrics(run_dir, 3)
    before = (run_dir / "metrics.h5").read_bytes()
    MetricsWriter(run_dir, RANKS).truncate(3)
    assert (run_dir / "metrics.h5").read_bytes() == before
    MetricsWriter(run_dir, RANKS).truncate(0)  # and a run that never evaluated has nothing to drop
    MetricsWriter(run_dir / "checkpoints", RANKS).truncate(0)


@pytest.mark.parametrize("evaluations", [-1, 4, 2.0, True])
def test_truncate_refuses_impossible_counts(run_dir, evaluations):
    writer = write_metrics(run_dir, 3)
    with pytest.raises(ValueError, match="evaluations"):
        writer.truncate(evaluations)
    assert writer.evals == 3 and len(read_metrics(run_dir)["round"]) == 3
