"""The embedded default partition lives in a cache directory, never in the caller's working directory."""

import pytest
from click.testing import CliRunner

import fedgossip.run.records
from fedgossip.cli.main import cli
from fedgossip.data.manifest import Manifest
from fedgossip.errors import DataError
from fedgossip.run.cache import cache_dir
from fedgossip.run.default_data import default_partition


@pytest.fixture
def no_cache_settings(monkeypatch, tmp_path):
    for name in ("FEDGOSSIP_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


def test_fedgossip_cache_wins_over_xdg_and_home(no_cache_settings, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("FEDGOSSIP_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_xdg_cache_home_is_used_without_fedgossip_cache(no_cache_settings, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "fedgossip"


@pytest.mark.parametrize("empty", ["FEDGOSSIP_CACHE", "XDG_CACHE_HOME"])
def test_an_empty_variable_counts_as_unset(no_cache_settings, monkeypatch, tmp_path, empty):
    monkeypatch.setenv(empty, "")
    assert cache_dir() == tmp_path / "home" / ".cache" / "fedgossip"


def test_a_relative_cache_is_made_absolute(no_cache_settings, monkeypatch, tmp_path):
    monkeypatch.setenv("FEDGOSSIP_CACHE", "cache")
    assert cache_dir() == tmp_path / "cache"


def test_the_default_partition_is_made_in_the_cache_and_not_in_the_working_directory(
    no_cache_settings, tmp_path
):
    made = default_partition(2)
    assert made == tmp_path / "home" / ".cache" / "fedgossip" / "digits-2"
    assert Manifest.read(made).nodes == 2
    assert not (tmp_path / "datasets").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


@pytest.mark.parametrize("cache", ["file", "file/below"])
def test_a_cache_in_the_way_of_a_file_is_one_clear_error(no_cache_settings, monkeypatch, tmp_path, cache):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("FEDGOSSIP_CACHE", str(tmp_path / cache))
    with pytest.raises(DataError, match=r"FEDGOSSIP_CACHE=.*file.*is not a directory; set FEDGOSSIP_CACHE"):
        default_partition(2)
    assert (tmp_path / "file").read_text() == "not a folder"


def test_a_default_run_leaves_the_working_directory_untouched_but_for_its_results(
    no_cache_settings, monkeypatch, tmp_path
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(fedgossip.run.records, "start_guardian", lambda *args, **kwargs: None)
    result = CliRunner().invoke(cli, ["train", "--rounds", "1", "--out", "R", "--name", "x"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} - {"home"} == {"R", "xdg"}, result.output
    assert Manifest.read(tmp_path / "xdg" / "fedgossip" / "digits-1").nodes == 1


@pytest.mark.parametrize("in_the_way", ["file", "folder"])
def test_something_else_where_the_partition_goes_is_named_and_kept(
    no_cache_settings, monkeypatch, tmp_path, in_the_way
):
    monkeypatch.setenv("FEDGOSSIP_CACHE", str(tmp_path / "cache"))
    target = tmp_path / "cache" / "digits-2"
    if in_the_way == "file":
        target.parent.mkdir()
        target.write_text("mine")
    else:
        target.mkdir(parents=True)
        (target / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match=r"digits-2 is in the way of the default partition.*FEDGOSSIP_CACHE"):
        default_partition(2)
    assert (target if in_the_way == "file" else target / "notes.txt").read_text() == "mine"
