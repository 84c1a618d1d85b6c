"""Plugin specs: syntax, conversion, range checks, and errors that list every problem."""

import pytest

from fedgossip.errors import ConfigError
from fedgossip.specs import REQUIRED, Param, bind, format_spec, parse_spec

PARAMS = (
    Param("alpha", float, 0.5, gt=0),
    Param("min_size", int, 10, ge=0),
    Param("balance", bool, False),
    Param("mode", str, "a", choices=("a", "b")),
)


def test_parse_name_only():
    spec = parse_spec("iid")
    assert spec.name == "iid"
    assert dict(spec.args) == {}


def test_parse_keeps_commas_inside_a_value():
    spec = parse_spec("dispatch:clusters=16,balance=0.8,1.2,replication=2")
    assert dict(spec.args) == {"clusters": "16", "balance": "0.8,1.2", "replication": "2"}


def test_parse_keeps_colons_in_paths():
    assert parse_spec("npz:path=/data/a:b.npz").args["path"] == "/data/a:b.npz"


@pytest.mark.parametrize("text", [":alpha=1", "dirichlet:0.1", "dirichlet:alpha=1,alpha=2", "x:=3"])
def test_parse_rejects_malformed_specs(text):
    with pytest.raises(ConfigError):
        parse_spec(text)


def test_bind_converts_and_fills_defaults():
    values = bind(parse_spec("dirichlet:alpha=0.1,balance=yes"), PARAMS)
    assert values == {"alpha": 0.1, "min_size": 10, "balance": True, "mode": "a"}


def test_bind_reports_every_problem_at_once():
    with pytest.raises(ConfigError) as info:
        bind(parse_spec("dirichlet:alpha=0,min_size=x,colour=red,mode=c"), PARAMS)
    message = str(info.value)
    assert "alpha='0': must be > 0" in message
    assert "min_size='x': expected an integer" in message
    assert "unknown parameter 'colour'" in message and "alpha, min_size, balance, mode" in message
    assert "mode='c': must be one of a, b" in message


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_bind_rejects_non_finite_numbers(value):
    with pytest.raises(ConfigError, match="finite"):
        bind(parse_spec(f"d:alpha={value}"), PARAMS)


def test_bind_requires_required_params():
    with pytest.raises(ConfigError, match="missing required parameter 'path'"):
        bind(parse_spec("npz"), (Param("path", str, REQUIRED, help="file to read"),))


def test_format_spec_round_trips_through_bind():
    values = bind(parse_spec("dirichlet:alpha=0.1"), PARAMS)
    again = bind(parse_spec(format_spec("dirichlet", values)), PARAMS)
    assert again == values
