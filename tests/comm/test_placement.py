"""Nodes over ranks in contiguous blocks: every node on exactly one rank, the first N mod R ranks one more."""

from __future__ import annotations

import pytest

from fedgossip.comm.placement import Placement
from fedgossip.errors import ConfigError


@pytest.mark.parametrize(("nodes", "ranks"), [(1, 1), (8, 8), (8, 2), (10, 4), (1000, 3), (7, 1), (5, 4)])
def test_every_node_lives_on_one_rank_in_contiguous_blocks(nodes, ranks):
    placement = Placement(nodes, ranks)
    hosted = [list(placement.nodes_of(rank)) for rank in range(ranks)]
    assert [node for block in hosted for node in block] == list(range(nodes))
    sizes = [len(block) for block in hosted]
    assert sizes == sorted(sizes, reverse=True) and max(sizes) - min(sizes) <= 1
    assert sum(size > nodes // ranks for size in sizes) == nodes % ranks
    for rank, block in enumerate(hosted):
        for position, node in enumerate(block):
            assert placement.rank_of(node) == rank
            assert placement.index_on_rank(node) == position
    assert placement.record() == [block[0] for block in hosted] + [nodes]


def test_the_documented_example_250_nodes_per_rank():
    placement = Placement(1000, 4)
    assert [placement.nodes_of(r) for r in range(4)] == [range(0, 250), range(250, 500), range(500, 750),
                                                         range(750, 1000)]  # fmt: skip


def test_fewer_nodes_than_ranks_is_refused_naming_both_numbers():
    with pytest.raises(ConfigError, match=r"--nodes 3 is below the 4 ranks"):
        Placement(3, 4)


def test_a_node_outside_the_run_has_no_rank():
    with pytest.raises(ValueError, match="node 8 is outside"):
        Placement(8, 2).rank_of(8)
