"""Making a partition end to end: test hold-out, coverage, manifest records."""

import numpy as np
import pytest

from fedgossip.data.create import PartitionRequest, create_partition, hold_out_test
from fedgossip.data.shards import Partition
from fedgossip.data.sources.base import Dataset
from fedgossip.errors import ConfigError


def _dataset(counts=(50, 30, 20)):
    y = np.repeat(np.arange(len(counts)), counts).astype(np.int64)
    x = np.arange(len(y), dtype=np.float32)[:, None]
    return Dataset(x_train=x, y_train=y, classes=tuple(str(c) for c in range(len(counts))))


def test_hold_out_is_stratified_and_disjoint():
    data = _dataset()
    train, test = hold_out_test(data, 0.2, np.random.default_rng(0))
    assert len(np.intersect1d(train, test)) == 0
    assert len(train) + len(test) == 100
    assert np.bincount(data.y_train[test]).tolist() == [10, 6, 4]


def test_hold_out_refuses_an_empty_side():
    with pytest.raises(ConfigError, match="test-fraction"):
        hold_out_test(_dataset((1, 1)), 0.2, np.random.default_rng(0))


def test_partition_covers_every_training_sample_once(tmp_path):
    request = PartitionRequest(source="digits", scheme="dirichlet:alpha=0.3", nodes=10, seed=1)
    manifest = create_partition(request, tmp_path / "p")
    opened = Partition(tmp_path / "p")
    index = np.concatenate([opened.read_shard(i).index for i in range(manifest.nodes)])
    test_size = opened.read_test().y.size
    assert np.sort(index).size == np.unique(index).size == manifest.train_size
    assert manifest.train_size + test_size == 1797
    histograms = np.array([s.label_histogram for s in manifest.shards])
    assert histograms.sum() == manifest.train_size
    for node in range(manifest.nodes):
        shard = opened.read_shard(node)
        assert np.bincount(shard.y, minlength=10).tolist() == manifest.shards[node].label_histogram


def test_shards_hold_the_source_samples_they_claim(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    create_partition(PartitionRequest(source="digits", scheme="iid", nodes=3), tmp_path / "p")
    shard = Partition(tmp_path / "p").read_shard(2)
    np.testing.assert_array_equal(shard.y, digits.target[shard.index])
    np.testing.assert_allclose(shard.x.reshape(len(shard.y), -1), digits.data[shard.index] / 16.0, rtol=1e-6)


def test_test_fraction_is_refused_for_sources_with_their_own_split(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "own.npz"
    np.savez(
        path, x=rng.random((20, 3)), y=np.arange(20) % 2, x_test=rng.random((6, 3)), y_test=np.arange(6) % 2
    )
    request = PartitionRequest(source=f"npz:path={path}", scheme="iid", nodes=2, test_fraction=0.3)
    with pytest.raises(ConfigError, match="has its own test split"):
        create_partition(request, tmp_path / "p")
    assert not (tmp_path / "p").exists()
