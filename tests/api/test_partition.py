"""``fg.create_partition`` and ``fg.Partition``: write a partition, then read and verify it."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fedgossip as fg


def test_partition_reports_sizes_histograms_and_source(digits4):
    part = fg.Partition(digits4)
    assert part.nodes == 4 and part.source == "digits" and part.scheme.startswith("dirichlet:alpha=0.5")
    assert part.input_shape == (1, 8, 8) and len(part.classes) == 10
    manifest = json.loads((digits4 / "partition.json").read_text())
    np.testing.assert_array_equal(part.sizes, [shard["size"] for shard in manifest["shards"]])
    np.testing.assert_array_equal(part.label_histograms.sum(axis=1), part.sizes)
    # digits has 1,797 images; 20 % are held out for the test set, the rest cover the nodes once
    assert part.sizes.sum() + part.test_size == 1797
    x, y = part.read_shard(2)
    assert x.shape == (part.sizes[2], 1, 8, 8)
    np.testing.assert_array_equal(np.bincount(y, minlength=10), part.label_histograms[2])


def test_create_partition_returns_the_partition_and_refuses_an_existing_one(tmp_path):
    part = fg.create_partition("digits", nodes=3, scheme="iid", out=tmp_path / "d3")
    assert part.path == tmp_path / "d3" and part.nodes == 3
    assert part.sizes.max() - part.sizes.min() <= 1  # iid: equal shares
    with pytest.raises(fg.DataError, match="already exists; choose another --out or pass --force"):
        fg.create_partition("digits", nodes=3, scheme="iid", out=tmp_path / "d3")
    with pytest.raises(fg.ConfigError, match="unknown partitioner 'nosuch'"):
        fg.create_partition("digits", nodes=3, scheme="nosuch", out=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_a_damaged_shard_is_found_on_open(tmp_path):
    part = fg.create_partition("digits", nodes=2, scheme="iid", out=tmp_path / "d2")
    shard = part.path / "shard-00001.h5"
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(fg.DataError, match=r"shard-00001\.h5"):
        fg.Partition(part.path)
    assert fg.Partition(part.path, verify=False).nodes == 2  # the manifest alone is still whole


def test_a_folder_that_is_not_a_partition_is_one_clear_error(tmp_path):
    with pytest.raises(fg.DataError, match=r"partition\.json"):
        fg.Partition(tmp_path)
