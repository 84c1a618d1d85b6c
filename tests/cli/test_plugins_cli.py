"""``fedgossip plugins [FAMILY]``, and the registry's report of names it cannot use."""

import json
from importlib.metadata import EntryPoint

import pytest

from fedgossip import registry as registry_module
from fedgossip.compress.base import Compressor
from fedgossip.compress.halfprec import BFloat16, Float16
from fedgossip.errors import ConfigError
from fedgossip.families import FAMILIES, registry_of
from fedgossip.registry import Registry

BUILTINS = {
    "datasets": {"digits", "mnist", "csv"},
    "partitioners": {"iid", "dirichlet", "shards", "dispatch"},
    "topologies": {"ring", "torus", "complete"},
    "compressors": {"none", "topk", "qsgd"},
    "algorithms": {"dpsgd", "swarm", "fedavg"},
    "models": {"mlp", "cnn"},
    "plugins": {"hide", "share-data"},
}


def _listing(run_cli, *args):
    result = run_cli("plugins", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_every_family_is_listed_with_its_builtins(run_cli):
    result = run_cli("plugins")
    assert result.exit_code == 0, result.output
    for family, names in BUILTINS.items():
        assert f"{family} (entry points: fedgossip.{family})" in result.output
        for name in names:
            assert f"│ {name} " in result.output, name
    assert "topk" in result.output and "ratio (0.01)" in result.output
    assert "dirichlet" in result.output and "alpha (0.5)" in result.output


def test_every_family_is_in_the_json_in_catalogue_order(run_cli):
    listing = _listing(run_cli)
    assert list(listing) == list(FAMILIES)
    for family, names in BUILTINS.items():
        assert names <= {row["name"] for row in listing[family]["plugins"]}
        assert listing[family]["group"] == f"fedgossip.{family}"


def test_a_family_name_lists_only_that_family(run_cli):
    result = run_cli("plugins", "topologies")
    assert result.exit_code == 0
    assert "ring" in result.output and "random-regular" in result.output
    assert "compressors" not in result.output and "dirichlet" not in result.output


def test_an_empty_family_says_none_installed(run_cli, monkeypatch):
    empty = Registry("privacy", Compressor)
    monkeypatch.setattr(empty, "_load_entry_points", lambda: None)
    monkeypatch.setattr("fedgossip.families.registry_of", lambda family: empty)
    result = run_cli("plugins", "privacy")
    assert result.exit_code == 0
    assert "privacy (entry points: fedgossip.privacy): none installed" in result.output
    assert _listing(run_cli, "privacy") == {
        "privacy": {"group": "fedgossip.privacy", "plugins": [], "problems": {}}
    }


def test_unknown_family_is_one_red_line_naming_the_families(run_cli):
    result = run_cli("plugins", "compresors")
    assert result.exit_code == 1
    assert result.stderr.count("error:") == 1
    assert "unknown plugin family 'compresors'" in result.stderr
    assert ", ".join(FAMILIES) in result.stderr


def test_json_gives_params_with_type_default_and_range(run_cli):
    listing = _listing(run_cli, "compressors")
    assert list(listing) == ["compressors"]
    rows = {row["name"]: row for row in listing["compressors"]["plugins"]}
    assert rows["topk"]["provider"] == "fedgossip"
    assert rows["topk"]["summary"].startswith("Send the k values of largest magnitude")
    (ratio,) = rows["topk"]["params"]
    assert ratio["name"] == "ratio" and ratio["type"] == "float"
    assert ratio["default"] == 0.01 and ratio["required"] is False
    assert ratio["allowed"] == "> 0 and <= 1"
    assert listing["compressors"]["problems"] == {}
    dirichlet = {row["name"]: row for row in _listing(run_cli, "partitioners")["partitioners"]["plugins"]}
    assert {p["name"]: p["default"] for p in dirichlet["dirichlet"]["params"]}["alpha"] == 0.5


def test_table_fits_80_columns(run_cli):
    result = run_cli("plugins", "compressors")
    assert max(len(line.rstrip()) for line in result.output.splitlines()) <= 80


def test_data_list_is_unchanged(run_cli):
    result = run_cli("data", "list")
    assert result.exit_code == 0 and "dataset sources" in result.output and "synthetic" in result.output


def test_registry_of_imports_the_family_it_names():
    assert set(registry_of("compressors").available()) >= BUILTINS["compressors"]
    with pytest.raises(ConfigError, match="known: datasets, partitioners"):
        registry_of("gadgets")


# --- the registry's broken names ---------------------------------------------------------


# Registering sets the class's ``name``: these throwaway subclasses keep fp16 and bf16 untouched.
class Half(Float16):
    """Send values as fp16."""


class Brain(BFloat16):
    """Send values as bf16."""


HERE = __name__  # entry points below load these classes from this very module


def _fake_entry_points(monkeypatch, *points: EntryPoint) -> None:
    def fake(group: str) -> list[EntryPoint]:
        return [point for point in points if point.group == group]

    monkeypatch.setattr(registry_module, "entry_points", fake)


def test_runtime_register_of_a_taken_name_names_both_providers():
    registry = Registry("compressors", Compressor)
    registry.register("half", Half, provider="fedgossip")
    with pytest.raises(ConfigError) as info:
        registry.register("half", Brain, provider="fedgossip-bfloat")
    message = str(info.value)
    assert "'half'" in message and "one from fedgossip, one from fedgossip-bfloat" in message
    assert "uninstall one of them" in message


def test_clashing_entry_points_are_reported_and_refused_by_name(monkeypatch):
    group = "fedgossip.gizmos"
    _fake_entry_points(
        monkeypatch,
        EntryPoint("half", f"{HERE}:Half", group),
        EntryPoint("half", f"{HERE}:Brain", group),
        EntryPoint("bf16", f"{HERE}:Brain", group),
    )
    registry = Registry("gizmos", Compressor)
    problems = registry.problems()
    assert list(problems) == ["half"]
    # EntryPoint objects built by hand have no distribution: the provider is the entry point's value
    assert f"one from {HERE}:Brain, one from {HERE}:Half" in problems["half"]
    assert list(registry.available()) == ["bf16"]  # one clash does not take the family down
    with pytest.raises(ConfigError, match="two gizmos are called 'half'"):
        registry.create("half")


def test_the_same_entry_point_seen_twice_is_no_clash(monkeypatch):
    group = "fedgossip.gizmos"
    point = EntryPoint("half", f"{HERE}:Half", group)
    _fake_entry_points(monkeypatch, point, point)
    registry = Registry("gizmos", Compressor)
    assert registry.problems() == {}
    assert registry.get("half") is Half


def test_an_entry_point_that_fails_to_import_is_reported(monkeypatch):
    group = "fedgossip.gizmos"
    _fake_entry_points(
        monkeypatch,
        EntryPoint("ghost", "fedgossip_no_such_package:Ghost", group),
        EntryPoint("notacompressor", "fedgossip.data.partition.iid:Iid", group),
        EntryPoint("bf16", f"{HERE}:Brain", group),
    )
    registry = Registry("gizmos", Compressor)
    problems = registry.problems()
    assert sorted(problems) == ["ghost", "notacompressor"]
    assert "cannot load gizmo 'ghost'" in problems["ghost"]
    assert "No module named 'fedgossip_no_such_package'" in problems["ghost"]
    assert "not a subclass of Compressor" in problems["notacompressor"]
    assert list(registry.available()) == ["bf16"]


def test_listing_shows_a_broken_name_with_its_message(run_cli, monkeypatch):
    group = "fedgossip.compressors"
    registry = Registry("compressors", Compressor)
    _fake_entry_points(
        monkeypatch,
        EntryPoint("half", f"{HERE}:Half", group),
        EntryPoint("half", f"{HERE}:Brain", group),
    )
    monkeypatch.setattr("fedgossip.families.registry_of", lambda family: registry)
    result = run_cli("plugins", "compressors")
    assert result.exit_code == 0
    assert "half" in result.output and "unusable" in result.output
    assert "two compressors are called" in " ".join(result.output.split())
    assert _listing(run_cli, "compressors")["compressors"]["problems"].keys() == {"half"}


def test_help_names_the_families_and_gives_examples(run_cli):
    result = run_cli("plugins", "--help")
    assert result.exit_code == 0
    assert "Examples" in result.output and "fedgossip plugins compressors" in result.output
    assert "datasets, partitioners, topologies" in " ".join(result.output.split())


def test_the_listing_shows_docstrings_without_rst_markup(run_cli):
    # The mlp summary says ``layers`` and ``hidden`` in its docstring; a terminal should read them plain.
    result = run_cli("plugins")
    assert result.exit_code == 0, result.output
    assert "``" not in result.output and ":class:" not in result.output
    assert "layers ReLU" in result.output


@pytest.mark.parametrize(
    ("docstring", "shown"),
    [
        ("Give ``classes_per_node`` classes.", "Give classes_per_node classes."),
        ("Wrap a :class:`torch.nn.Module` and :func:`~x.y.f`.", "Wrap a torch.nn.Module and f."),
        ("Keep `k` values; 2**(bits−1) levels.", "Keep k values; 2**(bits−1) levels."),
    ],
)
def test_a_plugin_summary_is_plain_text(docstring, shown):
    class Documented(Compressor):
        __doc__ = docstring

    assert Documented.summary() == shown
