"""The partition directory: atomic writes, checksums on read, and a strict manifest."""

import json
from pathlib import Path

import numpy as np
import pytest

import fedgossip.data.shards as shards_module
from fedgossip.data.manifest import TEST_NAME, Manifest, ShardInfo, shard_name
from fedgossip.data.shards import Partition, ShardData, write_partition
from fedgossip.errors import DataError


def _partition(nodes=3, per_node=5):
    rng = np.random.default_rng(0)
    shards = [
        ShardData(
            rng.random((per_node, 2), dtype=np.float32),
            rng.integers(0, 3, per_node),
            np.arange(i * per_node, (i + 1) * per_node),
        )
        for i in range(nodes)
    ]
    test = ShardData(rng.random((4, 2), dtype=np.float32), rng.integers(0, 3, 4))
    manifest = Manifest(
        source="fake",
        source_sha256="0" * 64,
        scheme="iid",
        seed=0,
        nodes=nodes,
        classes=["a", "b", "c"],
        input_shape=[2],
        test_fraction=0.2,
        replication=1,
        shards=[ShardInfo(shard_name(i), per_node, [0, 0, 0]) for i in range(nodes)],
        test=ShardInfo(TEST_NAME, 4, [0, 0, 0]),
        stats={},
        files={},
        created_with="test",
    )
    return manifest, shards, test


def test_written_shards_read_back_identically(tmp_path):
    manifest, shards, test = _partition()
    write_partition(tmp_path / "p", manifest, shards, test)
    opened = Partition(tmp_path / "p")
    opened.verify()
    for node, shard in enumerate(shards):
        back = opened.read_shard(node)
        np.testing.assert_array_equal(back.x, shard.x)
        np.testing.assert_array_equal(back.y, shard.y)
        np.testing.assert_array_equal(back.index, shard.index)
    np.testing.assert_array_equal(opened.read_test().y, test.y)


def test_existing_directory_is_refused_without_force(tmp_path):
    manifest, shards, test = _partition()
    write_partition(tmp_path / "p", manifest, shards, test)
    with pytest.raises(DataError, match=r"already exists.*--force"):
        write_partition(tmp_path / "p", manifest, shards, test)
    replaced = write_partition(tmp_path / "p", manifest, shards, test, force=True)
    assert Partition(tmp_path / "p").manifest == replaced


def test_force_never_replaces_a_directory_that_is_not_a_partition(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("precious")
    manifest, shards, test = _partition()
    with pytest.raises(DataError, match=r"not a partition directory"):
        write_partition(tmp_path / "home", manifest, shards, test, force=True)
    assert (tmp_path / "home" / "thesis.tex").read_text() == "precious"


def test_failure_midway_leaves_nothing_and_keeps_the_old_partition(tmp_path, monkeypatch):
    manifest, shards, test = _partition()
    write_partition(tmp_path / "p", manifest, shards, test)
    before = sorted(p.name for p in tmp_path.iterdir())
    written = []
    real_write = shards_module._write_arrays

    def failing_write(path, data, node):
        if written:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C on the second file
        written.append(path)
        return real_write(path, data, node)

    monkeypatch.setattr(shards_module, "_write_arrays", failing_write)
    with pytest.raises(KeyboardInterrupt):
        write_partition(tmp_path / "p", manifest, shards, test, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    Partition(tmp_path / "p").verify()


def test_corrupted_shard_is_named(tmp_path):
    manifest, shards, test = _partition()
    write_partition(tmp_path / "p", manifest, shards, test)
    path = tmp_path / "p" / shard_name(1)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"shard-00001.h5 is corrupted"):
        Partition(tmp_path / "p").read_shard(1)
    with pytest.raises(DataError, match=r"shard-00001.h5 is corrupted"):
        Partition(tmp_path / "p").verify()
    Partition(tmp_path / "p").read_shard(0)  # the others are still fine


def test_missing_shard_is_named(tmp_path):
    manifest, shards, test = _partition()
    write_partition(tmp_path / "p", manifest, shards, test)
    (tmp_path / "p" / shard_name(2)).unlink()
    with pytest.raises(DataError, match=r"shard-00002.h5 is missing"):
        Partition(tmp_path / "p").verify()


def _edit_manifest(directory: Path, edit) -> None:
    path = directory / "partition.json"
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["files"].update({"../../etc/passwd": "0" * 64}), "is not a shard or test file"),
        (lambda m: m.update(format_version=99), "format version 99"),
        (lambda m: m.pop("shards"), "missing key 'shards'"),
        (lambda m: m.update(nodes=7), "nodes is 7 but 3 shards"),
        (lambda m: m["shards"][0].update(file="../x.h5"), "shard files must be"),
    ],
)
def test_tampered_manifest_is_refused(tmp_path, edit, message):
    manifest, shards, test = _partition()
    write_partition(tmp_path / "p", manifest, shards, test)
    _edit_manifest(tmp_path / "p", edit)
    with pytest.raises(DataError, match=message):
        Partition(tmp_path / "p")


def test_truncated_manifest_is_a_data_error(tmp_path):
    manifest, shards, test = _partition()
    write_partition(tmp_path / "p", manifest, shards, test)
    path = tmp_path / "p" / "partition.json"
    path.write_text(path.read_text()[:50])
    with pytest.raises(DataError, match=r"not readable JSON"):
        Partition(tmp_path / "p")


def test_not_a_partition_directory(tmp_path):
    with pytest.raises(DataError, match=r"does not exist"):
        Partition(tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"partition.json is missing"):
        Partition(tmp_path)
