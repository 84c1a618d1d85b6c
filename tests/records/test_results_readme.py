"""results/README.md documents every field a run writes, so a new field cannot go undocumented."""

import json
import re
from pathlib import Path

import h5py
import pytest
from click.testing import CliRunner

import fedgossip.run.records
from fedgossip.cli.main import cli

README = Path(__file__).resolve().parents[2] / "results" / "README.md"


def _run_directory_section() -> str:
    text = README.read_text()
    return text[text.index("## A run directory") :]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One short default run (one rank, one round), its directory."""
    out = tmp_path_factory.mktemp("readme")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEDGOSSIP_CACHE", str(out / "datasets"))
        patch.setattr(fedgossip.run.records, "start_guardian", lambda *args, **kwargs: None)
        result = CliRunner().invoke(cli, ["train", "--rounds", "1", "--out", str(out), "--name", "r"])
    assert result.exit_code == 0, result.output
    return out / "r"


def _undocumented(names) -> list[str]:
    section = _run_directory_section()
    return sorted(name for name in names if f"`{name}`" not in section)


def test_every_run_json_field_is_documented(run_dir):
    assert _undocumented(json.loads((run_dir / "run.json").read_text())) == []


def test_every_summary_json_field_is_documented(run_dir):
    assert _undocumented(json.loads((run_dir / "summary.json").read_text())) == []


def test_every_metrics_dataset_is_documented(run_dir):
    with h5py.File(run_dir / "metrics.h5") as metrics:
        assert _undocumented(metrics.keys()) == []


def test_the_section_is_found_and_names_fields_in_backquotes():
    # The checks above look for `name`; a section without them would make every field "undocumented".
    assert re.search(r"`status`.*`config`", _run_directory_section(), re.S)
