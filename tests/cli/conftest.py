"""Helpers for driving the CLI as a user would."""

import pytest
from click.testing import CliRunner

from fedgossip.cli.main import cli


@pytest.fixture
def run_cli(monkeypatch):
    """Run ``fedgossip ARGS...`` in-process on an 80-column, non-terminal stdout."""
    monkeypatch.setenv("COLUMNS", "80")

    def run(*args: str):
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return run
