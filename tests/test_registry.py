"""Registries: built-ins through entry points, duplicates refused, unknown names listed."""

import pytest

from fedgossip.data.partition.base import PARTITIONERS, Partitioner
from fedgossip.data.sources.base import SOURCES
from fedgossip.errors import ConfigError
from fedgossip.registry import Plugin, Registry
from fedgossip.specs import Param


class Base(Plugin):
    pass


class Scaled(Base):
    """Scale things."""

    params = (Param("factor", float, 1.0, gt=0),)

    def __init__(self, factor):
        self.factor = factor


class Other(Base):
    """Another plugin."""


def test_builtins_arrive_through_entry_points():
    assert {"iid", "dirichlet", "shards", "quantity", "natural"} <= set(PARTITIONERS.available())
    assert {"digits", "synthetic", "mnist", "mnist5k", "cifar10", "npz", "hdf5", "csv"} <= set(
        SOURCES.available()
    )
    assert PARTITIONERS.provider("dirichlet") == "fedgossip"


def test_create_validates_and_records_canonical_spec():
    registry = Registry("things", Base)
    registry.register("scaled", Scaled)
    made = registry.create("scaled:factor=2")
    assert made.factor == 2.0
    assert made.spec == "scaled:factor=2.0"
    with pytest.raises(ConfigError, match="must be > 0"):
        registry.create("scaled:factor=-1")


def test_unknown_name_lists_known_ones():
    with pytest.raises(ConfigError) as info:
        PARTITIONERS.create("dirichlett:alpha=0.1")
    assert "unknown partitioner 'dirichlett'" in str(info.value)
    assert "dirichlet, dispatch, iid" in str(info.value)


def test_duplicate_name_from_another_provider_is_refused():
    registry = Registry("things", Base)
    registry.register("scaled", Scaled, provider="pkg-a")
    with pytest.raises(ConfigError, match="one from pkg-a, one from pkg-b"):
        registry.register("scaled", Other, provider="pkg-b")


def test_registering_a_class_of_another_family_is_refused():
    with pytest.raises(ConfigError, match="not a subclass of Partitioner"):
        Registry("partitioners", Partitioner).register("bad", Other)


def test_describe_lists_params_with_defaults():
    registry = Registry("things", Base)
    registry.register("scaled", Scaled)
    (row,) = registry.describe()
    assert row["name"] == "scaled" and row["summary"] == "Scale things."
    assert row["params"][0] == {
        "name": "factor",
        "type": "float",
        "default": 1.0,
        "required": False,
        "allowed": "> 0",
        "help": "",
    }
