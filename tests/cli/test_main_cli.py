"""The root command: help with examples, version, ``python -m fedgossip``."""

import subprocess
import sys

import pytest

from fedgossip import __version__


def test_version(run_cli):
    assert __version__ in run_cli("--version").output


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["data"],
        ["data", "list"],
        ["data", "download"],
        ["partition"],
        ["partition", "create"],
        ["partition", "show"],
        ["bench"],
        ["bench", "partition"],
        ["topology"],
        ["topology", "show"],
        ["train"],
    ],
)
def test_every_command_has_help_with_an_example(run_cli, command):
    result = run_cli(*command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output


def test_python_dash_m_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "fedgossip", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "partition" in result.stdout
