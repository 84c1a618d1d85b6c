#!/usr/bin/env bash
# Run fedgossip across the hosts of a hostfile with plain mpiexec (no scheduler).
#
#   bash launch/hosts.sh 16 --data datasets/digits-16          # 16 ranks over launch/hostfile
#   FEDGOSSIP_DRY_RUN=1 bash launch/hosts.sh 16 --rounds 5     # print the command only
#
# The first argument is the number of ranks; the rest go to `fedgossip train`, from the
# directory you call it in (relative --data and --out are yours, not the clone's).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${FEDGOSSIP_VENV:-$ROOT/.venv}
HOSTFILE=${FEDGOSSIP_HOSTFILE:-$ROOT/launch/hostfile}

if [ $# -lt 1 ] || ! [[ $1 =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: bash launch/hosts.sh RANKS [fedgossip train options]" >&2
  exit 2
fi
ranks=$1
shift
if [ ! -f "$HOSTFILE" ] && [ -z "${FEDGOSSIP_DRY_RUN:-}" ]; then
  echo "error: $HOSTFILE not found; copy launch/hostfile.example and list your hosts" >&2
  exit 1
fi

# -genv passes the thread count to every rank on every host.
command=("$VENV/bin/mpiexec" -f "$HOSTFILE" -n "$ranks" -genv OMP_NUM_THREADS 1
  "$VENV/bin/fedgossip" train --device auto "$@")
# No cd: relative --data and --out resolve in the caller's directory; the venv and hostfile are absolute.
if [ -n "${FEDGOSSIP_DRY_RUN:-}" ]; then
  printf '%q ' "${command[@]}"
  printf '\n'
  exit 0
fi
exec "${command[@]}"
