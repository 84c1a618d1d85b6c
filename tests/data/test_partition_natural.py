"""Natural groups: one group per node, or whole groups dealt to even out node sizes."""

from __future__ import annotations

import numpy as np
import pytest

from fedgossip.data.partition import PARTITIONERS, Samples
from fedgossip.data.partition.base import check_cover
from fedgossip.data.partition.natural import Natural
from fedgossip.errors import ConfigError


def _grouped(sizes: list[int], ids: list | None = None) -> Samples:
    ids = list(range(len(sizes))) if ids is None else ids
    groups = np.repeat(np.array(ids), sizes)
    order = np.random.default_rng(0).permutation(len(groups))  # groups interleaved, as in real data
    return Samples(y=np.zeros(len(groups), np.int64), num_classes=1, groups=groups[order])


def test_natural_gives_one_group_per_node_in_group_order():
    s = _grouped([3, 5, 2], ids=["writer-b", "writer-c", "writer-a"])
    parts = Natural().split(s, 3, np.random.default_rng(0))
    check_cover(parts, len(s))
    assert [set(s.groups[p]) for p in parts] == [{"writer-a"}, {"writer-b"}, {"writer-c"}]


def test_natural_never_splits_a_group_across_nodes():
    s = _grouped([7, 1, 4, 4, 9, 2, 3])
    parts = Natural().split(s, 3, np.random.default_rng(0))
    check_cover(parts, len(s))
    owners = [{int(g) for g in s.groups[p]} for p in parts]
    assert sum(len(o) for o in owners) == 7  # 7 groups, each on exactly one node


def test_natural_deals_largest_groups_first_to_the_smallest_node():
    # 5→A; 4→B; 3→B (4<5) → 7; 3→A (5<7) → 8; 2→B → 9; 1→A → 9
    s = _grouped([5, 4, 3, 3, 2, 1])
    parts = Natural().split(s, 2, np.random.default_rng(0))
    assert [len(p) for p in parts] == [9, 9]
    assert [sorted({int(g) for g in s.groups[p]}) for p in parts] == [[0, 3, 5], [1, 2, 4]]


def test_natural_ignores_the_seed():
    s = _grouped([5, 4, 3, 3, 2, 1])
    first = Natural().split(s, 4, np.random.default_rng(1))
    other = Natural().split(s, 4, np.random.default_rng(2))
    assert all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_natural_without_groups_is_refused_naming_other_schemes():
    s = Samples(y=np.zeros(10, np.int64), num_classes=1)
    with pytest.raises(ConfigError, match="source has no natural groups") as info:
        Natural().split(s, 2, np.random.default_rng(0))
    assert "dirichlet" in str(info.value) and "iid" in str(info.value)


def test_natural_more_nodes_than_groups_is_refused():
    with pytest.raises(ConfigError, match="3 groups in the data, fewer than the 4 nodes"):
        Natural().split(_grouped([5, 5, 5]), 4, np.random.default_rng(0))


def test_natural_takes_no_parameters():
    with pytest.raises(ConfigError, match="unknown parameter"):
        PARTITIONERS.create("natural:nodes=3")
