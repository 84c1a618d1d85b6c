"""Run scripts and commands under a real ``mpiexec`` with several ranks, always with a timeout."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedgossip.bench.gossip import find_mpiexec
from fedgossip.errors import ConfigError

SCRIPTS = Path(__file__).parent / "scripts"


def mpiexec_path() -> str:
    """Return the mpiexec to use: the mpich extra installs it beside this Python, maybe not on PATH."""
    try:
        return find_mpiexec()
    except ConfigError as exc:
        pytest.fail(str(exc))


def rank_pids(name: str) -> list[int]:
    """Return the PIDs of the ranks of the ``fedgossip train --name name`` job (not its mpiexec)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"fedgossip" in cmdline and name.encode() in cmdline and b"-n" not in cmdline:
            pids.append(int(entry.name))
    return pids


def rank_of(pid: int) -> int:
    """Return the MPI rank of process ``pid``, as the launcher set it in its environment."""
    for entry in (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0"):
        name, _, value = entry.partition(b"=")
        if name in (b"PMI_RANK", b"OMPI_COMM_WORLD_RANK"):
            return int(value)
    raise LookupError(f"process {pid} has no rank in its environment")


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def mpirun(tmp_path):
    """Return ``run(ranks, *argv, timeout=...)`` executing ``mpiexec -n ranks argv`` in ``tmp_path``."""

    def run(ranks: int, *argv: str, timeout: float = 300, cwd: Path | None = None) -> Finished:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "80"}
        command = [mpiexec_path(), "-n", str(ranks), *[str(a) for a in argv]]
        try:
            done = subprocess.run(
                command, cwd=cwd or tmp_path, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(
                f"{' '.join(command)} hung for {timeout} s; output so far:\n{exc.stdout}\n{exc.stderr}"
            )
        return Finished(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture
def script():
    """Return ``[python, path-of-script]`` for a script in tests/mpi/scripts."""
    return lambda name: [sys.executable, str(SCRIPTS / name)]


@pytest.fixture
def fedgossip():
    """Return the command that runs the CLI in a rank."""
    return [sys.executable, "-m", "fedgossip"]


@pytest.fixture
def summary_screen(fedgossip):
    """Return ``show(run_dir)``: what ``fedgossip summary run_dir`` prints, 100 columns wide."""

    def show(run_dir: Path) -> str:
        shown = subprocess.run(
            [*fedgossip, "summary", str(run_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "100"},
        )
        assert shown.returncode == 0, shown.stderr
        return shown.stdout

    return show
