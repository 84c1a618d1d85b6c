"""Data-dependent dispatching: cover with replication, enforced size bounds, the saved rule, refusals."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits

from fedgossip.cli.main import cli
from fedgossip.data.create import PartitionRequest, create_partition
from fedgossip.data.manifest import DISPATCH_NAME, MANIFEST_NAME
from fedgossip.data.partition import PARTITIONERS, Samples
from fedgossip.data.partition.base import check_cover
from fedgossip.data.partition.dispatch import Dispatch
from fedgossip.data.partition.dispatch_assign import assign
from fedgossip.data.partition.dispatch_rule import DispatchRule
from fedgossip.data.shards import Partition
from fedgossip.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def digits() -> Samples:
    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, np.newaxis]
    keep = np.random.default_rng(0).permutation(len(x))[:1437]  # the training share partition uses
    return Samples(y=bunch.target[keep].astype(np.int64), num_classes=10, x=x[keep])


def _sizes_within_bounds(parts: list[np.ndarray], partitioner: Dispatch, n: int) -> None:
    fewest, most = partitioner._sizes(n, len(parts))
    sizes = [len(p) for p in parts]
    assert fewest <= min(sizes) and max(sizes) <= most, (fewest, most, sizes)


def _purity(parts: list[np.ndarray], y: np.ndarray) -> float:
    """Mean share of a node's points that carry its most common label."""
    return float(np.mean([np.bincount(y[p]).max() / len(p) for p in parts]))


def _giant_cluster(n: int = 4000, seed: int = 0) -> Samples:
    rng = np.random.default_rng(seed)
    giant = rng.random(n) < 0.9  # 90% of the points in one tight blob
    x = np.where(giant[:, None], 0.01 * rng.normal(size=(n, 5)), 5 + 10 * rng.normal(size=(n, 5)))
    return Samples(y=rng.integers(0, 10, n), num_classes=10, x=x)


# --- cover and bounds ------------------------------------------------------------------------


@pytest.mark.parametrize("replication", [1, 2, 3])
def test_every_point_is_on_exactly_p_distinct_nodes(digits, replication):
    partitioner = PARTITIONERS.create(f"dispatch:replication={replication}")
    parts = partitioner.split(digits, 16, np.random.default_rng(0))
    assert partitioner.replication == replication
    assert len(parts) == 16 and all(p.dtype == np.int64 for p in parts)
    assert all(np.array_equal(p, np.sort(p)) for p in parts)
    check_cover(parts, len(digits), replication)  # never twice on one node, exactly P in all
    _sizes_within_bounds(parts, partitioner, len(digits))


@pytest.mark.parametrize(
    "spec",
    [
        "dispatch",
        "dispatch:replication=2",
        "dispatch:replication=3,balance=1,1",
        "dispatch:balance=0.9,1.1,clusters=40",
        "dispatch:replication=5,balance=0.95,1.05",
    ],
)
@pytest.mark.parametrize("case", ["giant cluster", "identical points"])
def test_size_bounds_hold_on_adversarial_data(spec, case):
    s = _giant_cluster()
    if case == "identical points":
        s = Samples(y=s.y, num_classes=10, x=np.ones((len(s), 3)))
    partitioner = PARTITIONERS.create(spec)
    parts = partitioner.split(s, 16, np.random.default_rng(1))
    check_cover(parts, len(s), partitioner.replication)
    _sizes_within_bounds(parts, partitioner, len(s))
    low, high = partitioner.records["balance_achieved"]
    asked_low, asked_high = partitioner.balance
    share = partitioner.replication * len(s) / 16
    assert np.floor(asked_low * share) / share <= low <= high <= np.ceil(asked_high * share) / share
    # within the bounds asked, not just their rounding, wherever the copies leave room for it
    copies = partitioner.replication * len(s)
    assert low >= asked_low or np.ceil(asked_low * share) * 16 > copies
    assert high <= asked_high or np.floor(asked_high * share) * 16 < copies


def test_exact_balance_gives_equal_nodes(digits):
    parts = Dispatch(replication=2, balance=(1, 1)).split(digits, 16, np.random.default_rng(0))
    sizes = {len(p) for p in parts}
    assert sizes <= {2 * 1437 // 16, 2 * 1437 // 16 + 1}


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_assignment_meets_its_bounds_for_any_distances(data):
    """Ties everywhere (a few distinct distances) stress the repair and the lift."""
    n = data.draw(st.integers(1, 120), label="points")
    nodes = data.draw(st.integers(1, min(n, 12)), label="nodes")
    replication = data.draw(st.integers(1, nodes), label="replication")
    share = replication * n / nodes
    lower = data.draw(st.integers(0, int(np.floor(share))), label="lower")
    upper = data.draw(st.integers(int(np.ceil(share)), n), label="upper")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    distances = rng.integers(0, data.draw(st.sampled_from([1, 3, 1000])), size=(n, nodes)).astype(float)
    slots = assign(distances, replication, lower, upper)
    assert slots.shape == (n, replication)
    assert all(len(set(row)) == replication for row in slots.tolist())
    loads = np.bincount(slots.ravel(), minlength=nodes)
    assert loads.min() >= lower and loads.max() <= upper


def test_loose_bounds_send_every_point_to_its_nearest_nodes(digits):
    partitioner = Dispatch(replication=2, balance=(0, float("inf")))
    parts = partitioner.split(digits, 8, np.random.default_rng(0))
    routed = partitioner.rule.route(digits.x, replication=2)
    assert len(np.unique(routed)) == 8  # no node empty, so nothing had to move
    for node, part in enumerate(parts):
        np.testing.assert_array_equal(part, np.flatnonzero((routed == node).any(axis=1)))


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_gives_the_same_dispatch(digits):
    first = Dispatch(replication=2).split(digits, 12, np.random.default_rng(7))
    again = Dispatch(replication=2).split(digits, 12, np.random.default_rng(7))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


def test_different_seeds_may_give_different_dispatches(digits):
    splits = [Dispatch().split(digits, 12, np.random.default_rng(seed)) for seed in range(4)]
    differ = [not all(np.array_equal(a, b) for a, b in zip(splits[0], s, strict=True)) for s in splits[1:]]
    assert any(differ)  # k-means++ seeding follows the seed


# --- feature spaces and subsampling ----------------------------------------------------------


@pytest.mark.parametrize("features", ["pca:16", "random-projection:12"])
def test_reduced_feature_spaces_dispatch(digits, features):
    partitioner = PARTITIONERS.create(f"dispatch:features={features}")
    parts = partitioner.split(digits, 10, np.random.default_rng(0))
    check_cover(parts, len(digits))
    rule = partitioner.rule
    dims = int(features.split(":")[1])
    assert rule.projection.shape == (64, dims) and rule.centres.shape == (10, dims)
    assert partitioner.records["features"] == features
    assert rule.route(digits.x).shape == (len(digits), 1)


def test_sample_fits_kmeans_on_a_subset_yet_routes_every_point(digits):
    partitioner = Dispatch(sample=300, replication=2, balance=(0.8, 1.25))
    parts = partitioner.split(digits, 8, np.random.default_rng(0))
    assert partitioner.records["fit_points"] == 300
    check_cover(parts, len(digits), 2)
    # the split is exactly the capacity-respecting assignment of every point under the rule
    fewest, most = partitioner._sizes(len(digits), 8)
    slots = assign(partitioner.rule.node_distances(digits.x), 2, fewest, most)
    for node, part in enumerate(parts):
        np.testing.assert_array_equal(part, np.flatnonzero((slots == node).any(axis=1)))


def test_more_clusters_than_nodes_are_grouped_into_every_node(digits):
    partitioner = Dispatch(clusters=50)
    partitioner.split(digits, 16, np.random.default_rng(0))
    owner = partitioner.rule.cluster_to_node
    assert len(owner) == 50 and set(owner.tolist()) == set(range(16))


# --- what dispatching buys ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dispatch_nodes_are_purer_than_iid_nodes(digits, seed):
    rng = np.random.default_rng(seed)
    dispatched = Dispatch().split(digits, 16, rng)
    iid = PARTITIONERS.create("iid").split(digits, 16, np.random.default_rng(seed))
    # iid nodes mirror the global mix (~0.1 per label); digits cluster well by label
    assert _purity(dispatched, digits.y) > 2 * _purity(iid, digits.y)


def test_records_are_json_and_match_the_rule(digits):
    partitioner = Dispatch(replication=2)
    parts = partitioner.split(digits, 8, np.random.default_rng(0))
    records = json.loads(json.dumps(partitioner.records))
    assert records["clusters"] == 8 and records["replication"] == 2 and records["balance_asked"] == [0.5, 2.0]
    nearest = DispatchRule(
        partitioner.rule.centres, np.arange(8), 8, partitioner.rule.offset, partitioner.rule.projection
    ).route(digits.x)[:, 0]
    joint = np.zeros((8, 10), dtype=int)
    np.add.at(joint, (nearest, digits.y), 1)
    assert records["cluster_purity"] == pytest.approx(joint.max(axis=1).sum() / len(digits))
    assert records["node_purity_mean"] == pytest.approx(_purity(parts, digits.y))


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("balance", "message"),
    [("1.2,2", "0 <= L <= 1 <= U"), ("0.5,0.9", "0 <= L <= 1 <= U"), ("0.5", "two numbers"), ("a,b", "two")],
)
def test_bounds_that_exclude_the_even_share_are_refused(balance, message):
    with pytest.raises(ConfigError, match=message):
        PARTITIONERS.create(f"dispatch:balance={balance}")
    with pytest.raises(ConfigError, match=message):
        Dispatch(balance=balance)


@pytest.mark.parametrize(
    ("spec", "nodes", "message"),
    [
        ("dispatch:clusters=4", 8, "must be at least the 8 nodes"),
        ("dispatch:replication=9", 8, "replication=9 .* there are 8"),
        ("dispatch:clusters=400,sample=100", 8, "sample=100 gives 100"),
        ("dispatch:features=pca:100", 8, "use pca:64 or fewer"),
        ("dispatch", 2000, "use at most 1437 nodes"),
    ],
)
def test_infeasible_requests_are_refused_before_any_work(digits, spec, nodes, message):
    partitioner = PARTITIONERS.create(spec)
    with pytest.raises(ConfigError, match=message):
        partitioner.split(digits, nodes, np.random.default_rng(0))
    assert partitioner.rule is None


@pytest.mark.parametrize("features", ["pca", "pca:0", "umap:4", "raw:3"])
def test_unknown_feature_spaces_are_refused(features):
    with pytest.raises(ConfigError, match="raw, pca:D or random-projection:D"):
        PARTITIONERS.create(f"dispatch:features={features}")


def test_labels_only_samples_are_refused():
    s = Samples(y=np.arange(40) % 4, num_classes=4)
    with pytest.raises(ConfigError, match="dispatch routes points by their features"):
        Dispatch().split(s, 4, np.random.default_rng(0))


# --- the saved rule ----------------------------------------------------------------------------


@pytest.mark.parametrize("features", ["raw", "pca:8"])
def test_rule_survives_a_save_and_load(digits, tmp_path, features):
    partitioner = Dispatch(features=features, clusters=20)
    partitioner.split(digits, 6, np.random.default_rng(0))
    partitioner.rule.save(tmp_path / "rule.h5")
    loaded = DispatchRule.load(tmp_path / "rule.h5")
    np.testing.assert_array_equal(loaded.centres, partitioner.rule.centres)
    np.testing.assert_array_equal(loaded.cluster_to_node, partitioner.rule.cluster_to_node)
    assert loaded.num_nodes == 6
    np.testing.assert_array_equal(loaded.route(digits.x, 3), partitioner.rule.route(digits.x, 3))


def _write_rule(path, **arrays):
    with h5py.File(path, "w") as handle:
        handle.attrs.update({"format": "fedgossip-dispatch-rule", "version": 1, "num_nodes": 2})
        for key, value in arrays.items():
            handle.create_dataset(key, data=value)


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b"not an hdf5 file"),
        lambda p: _write_rule(p, centres=np.zeros((3, 4))),
        lambda p: _write_rule(p, centres=np.zeros((3, 4)), cluster_to_node=np.array([0, 1])),
        lambda p: _write_rule(p, centres=np.zeros((3, 4)), cluster_to_node=np.array([0, 0, 0])),
        lambda p: _write_rule(
            p, centres=np.zeros((2, 4)), cluster_to_node=np.array([0, 1]), projection=np.zeros((5, 4))
        ),
        lambda p: h5py.File(p, "w").close(),
    ],
)
def test_damaged_rule_files_raise_data_error_naming_the_file(tmp_path, damage):
    path = tmp_path / "rule.h5"
    damage(path)
    with pytest.raises(DataError, match=r"rule\.h5"):
        DispatchRule.load(path)


def test_route_refuses_points_of_another_shape(digits):
    partitioner = Dispatch()
    partitioner.split(digits, 4, np.random.default_rng(0))
    with pytest.raises(DataError, match="64 features, got 10"):
        partitioner.rule.route(np.zeros((3, 10)))


# --- end to end --------------------------------------------------------------------------------


def test_dispatch_partition_end_to_end(tmp_path):
    out = tmp_path / "p"
    manifest = create_partition(PartitionRequest("digits", "dispatch:replication=2", 8, 0), out)
    assert manifest.replication == 2
    assert manifest.extra["dispatch"]["replication"] == 2
    assert DISPATCH_NAME in manifest.files and len(manifest.files[DISPATCH_NAME]) == 64

    opened = Partition(out)
    opened.verify()
    index = np.concatenate([opened.read_shard(i).index for i in range(8)])
    assert np.all(np.bincount(index)[np.unique(index)] == 2)
    test = opened.read_test()
    routed = opened.dispatch_rule().route(test.x, replication=2)
    assert routed.shape == (len(test.y), 2) and routed.min() >= 0 and routed.max() < 8

    shown = CliRunner().invoke(cli, ["partition", "show", str(out)], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert "cluster purity" in shown.output and "node purity" in shown.output


def test_dispatch_rule_file_is_checked_against_the_manifest(tmp_path):
    out = tmp_path / "p"
    create_partition(PartitionRequest("digits", "dispatch", 4, 0), out)
    with h5py.File(out / DISPATCH_NAME, "a") as handle:
        handle["centres"][0, 0] += 1.0
    with pytest.raises(DataError, match=r"dispatch\.h5 is corrupted"):
        Partition(out).dispatch_rule()


def test_partitions_of_other_schemes_have_no_rule(tmp_path):
    out = tmp_path / "p"
    manifest = create_partition(PartitionRequest("digits", "iid", 4, 0), out)
    assert DISPATCH_NAME not in manifest.files and manifest.extra == {}
    with pytest.raises(DataError, match="has no dispatch rule"):
        Partition(out).dispatch_rule()


def test_manifest_accepts_no_other_extra_file(tmp_path):
    out = tmp_path / "p"
    create_partition(PartitionRequest("digits", "dispatch", 4, 0), out)
    raw = json.loads((out / MANIFEST_NAME).read_text())
    raw["files"]["../elsewhere.h5"] = raw["files"].pop(DISPATCH_NAME)
    (out / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(DataError, match=r"not a shard or test file of this directory, nor dispatch\.h5"):
        Partition(out)


def test_same_seed_gives_identical_dispatch_files(tmp_path):
    for name in ("a", "b"):
        create_partition(PartitionRequest("digits", "dispatch:features=pca:8", 5, 3), tmp_path / name)
    files = [Partition(tmp_path / name).manifest.files for name in ("a", "b")]
    assert files[0] == files[1]
