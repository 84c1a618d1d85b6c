"""From --filter, --share-data and --plugin to a run's plugins: names, kinds and refusals."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from fedgossip.errors import ConfigError
from fedgossip.plugins.base import TrainingPlugin
from fedgossip.plugins.resolve import build_plugins, check_plugin_placement
from fedgossip.settings.config import TrainConfig, merge_config
from fedgossip.settings.run_specs import plugin_specs

_DPSGD = SimpleNamespace(name="dpsgd", exchanges_gradients=False, server=None)


def test_share_data_takes_only_parameters_and_comes_before_the_filter():
    config = TrainConfig(share_data="budget=8,bits=4", filter="hide:fraction=0.2", plugin=("hide",))
    assert [(option, str(spec)) for option, spec in plugin_specs(config)] == [
        ("--share-data", "share-data:budget=8,bits=4"),
        ("--filter", "hide:fraction=0.2"),
        ("--plugin", "hide"),
    ]
    # the full spec is accepted too
    assert [(o, str(s)) for o, s in plugin_specs(TrainConfig(share_data="share-data:budget=8"))] == [
        ("--share-data", "share-data:budget=8")
    ]


def test_built_plugins_carry_their_canonical_specs():
    plugins = build_plugins(TrainConfig(share_data="budget=8", filter="hide"), _DPSGD, None)
    assert [p.name for p in plugins] == ["share-data", "hide"]
    assert plugins[0].spec.startswith("share-data:budget=8,bits=8")
    assert plugins[1].spec.startswith("hide:fraction=0.3")


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"filter": "share-data:budget=4"}, "is a share-data plugin, not a filter"),
        ({"filter": "hide", "plugin": ("hide:fraction=0.1",)}, "already in this run"),
        ({"share_data": "budget=4", "asynchronous": True}, "drop --async"),
        ({"filter": "hide", "asynchronous": True}, "drop --async"),
        ({"filter": "nosuch"}, "unknown"),
        ({"share_data": "budget=0"}, "budget"),
        ({"share_data": "budget=4", "link": "bandwidth=10Mbit"}, "drop --link"),
    ],
)
def test_bad_combinations_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        build_plugins(TrainConfig(**settings), _DPSGD, None)


def test_shared_raw_data_refuses_every_privacy_level():
    for level in ("sample", "node"):
        privacy = SimpleNamespace(name=f"dp-{level}", level=level)
        with pytest.raises(ConfigError, match=f"no differential-privacy guarantee.*drop --dp dp-{level}"):
            build_plugins(TrainConfig(share_data="budget=4"), _DPSGD, privacy)


def test_a_toml_list_of_plugins_becomes_a_tuple_and_bad_values_are_named():
    config = merge_config({}, {"plugin": ["hide:fraction=0.2"]})
    assert config.plugin == ("hide:fraction=0.2",)
    with pytest.raises(ConfigError, match="plugin must be a list"):
        TrainConfig(plugin=("",))
    with pytest.raises(ConfigError, match="filter must be a spec"):
        TrainConfig(filter=3)


class _TalksByMpi(TrainingPlugin):
    """A plugin written before co-hosted nodes: it would send through host.comm itself."""

    name = "talks-by-mpi"

    def start(self, host):
        raise AssertionError("never started in these tests")


def test_a_plugin_sending_by_mpi_itself_is_refused_only_when_a_rank_hosts_several_nodes():
    legacy, hide = _TalksByMpi(), build_plugins(TrainConfig(filter="hide"), _DPSGD, None)[0]
    assert legacy.one_node_per_rank and not hide.one_node_per_rank
    check_plugin_placement([legacy, hide], nodes=8, ranks=8)  # one node per rank: as it always ran
    check_plugin_placement([hide], nodes=1000, ranks=2)  # it keeps to its node's own samples
    with pytest.raises(ConfigError, match=r"talks-by-mpi talks to its neighbours by MPI itself.*8 nodes"):
        check_plugin_placement([hide, legacy], nodes=8, ranks=2)


def test_share_data_speaks_through_conversations_so_any_placement_serves():
    (share,) = build_plugins(TrainConfig(share_data="budget=4"), _DPSGD, None)
    assert not share.one_node_per_rank
    check_plugin_placement([share], nodes=64, ranks=1)
