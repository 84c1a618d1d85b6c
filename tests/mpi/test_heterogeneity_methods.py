"""Gradient tracking and D² remove the bias heterogeneous shards give D-PSGD (under mpiexec, 4 ranks)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fedgossip.bench.gossip import find_mpiexec

SCRIPT = Path(__file__).parent / "scripts" / "heterogeneous_quadratics.py"


def _error(tmp_path: Path, algorithm: str, local_steps: int, rounds: int, compressor: str = "none") -> float:
    command = [
        find_mpiexec(),
        "-n",
        "4",
        sys.executable,
        str(SCRIPT),
        algorithm,
        str(local_steps),
        str(rounds),
    ]
    command.append(compressor)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return float(re.search(r"error=(\S+)", done.stdout).group(1))


@pytest.fixture(scope="module")
def dpsgd_error(tmp_path_factory) -> float:
    return _error(tmp_path_factory.mktemp("dpsgd"), "dpsgd", 3, 300)


@pytest.mark.parametrize(("algorithm", "local_steps"), [("gt", 3), ("gt", 1), ("d2", 1)])
def test_exact_methods_reach_the_global_optimum_where_dpsgd_does_not(
    tmp_path, dpsgd_error, algorithm, local_steps
):
    error = _error(tmp_path, algorithm, local_steps, 300)
    assert dpsgd_error > 0.05, f"the problem is too homogeneous to tell: dpsgd is off by {dpsgd_error}"
    assert error < 1e-3, f"{algorithm} ends {error} from the optimum (dpsgd: {dpsgd_error})"


@pytest.mark.parametrize("compressor", ["uniform:bits=4", "qsgd:bits=5"])
def test_compressed_gradient_tracking_still_reaches_the_optimum(tmp_path, dpsgd_error, compressor):
    """CHOCO-style public copies for both the model and the direction (BEER's structure) lose no accuracy."""
    error = _error(tmp_path, "gt", 3, 300, compressor)
    assert error < 1e-3, (
        f"gt under {compressor} ends {error} from the optimum (uncompressed dpsgd: {dpsgd_error})"
    )
