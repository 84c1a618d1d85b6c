# shellcheck shell=bash
# Sourced by test.sh and quickstart.sh: build .venv with fedgossip and everything it needs.
#
# torch is installed first and pinned, so pip takes the CPU build instead of
# pulling several GB of CUDA packages as a dependency of fedgossip. On a GPU
# machine set FEDGOSSIP_TORCH to the build you want (e.g. "torch==2.13.0+cu126").
# Installing is skipped when nothing it depends on changed since the last run.

FEDGOSSIP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${FEDGOSSIP_VENV:-$FEDGOSSIP_ROOT/.venv}
TORCH_SPEC=${FEDGOSSIP_TORCH:-torch==2.13.0}
EXTRAS=${FEDGOSSIP_EXTRAS:-mpich,dp,plot,dev}
PYTHON=${PYTHON:-python3}

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "error: fedgossip needs Python 3.10 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

# pip without the noise of this machine's unused local index folders; keeps pip's exit status.
pip_install() {
  "$VENV/bin/python" -m pip install --quiet "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }
  return "${PIPESTATUS[0]}"
}

stamp="$VENV/.fedgossip-install"
wanted=$(cat "$FEDGOSSIP_ROOT/setup.cfg" "$FEDGOSSIP_ROOT/pyproject.toml" <(echo "$TORCH_SPEC $EXTRAS") | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "installing $TORCH_SPEC and fedgossip[$EXTRAS] into $VENV (takes a few minutes the first time)"
  if ! { pip_install --upgrade pip && pip_install "$TORCH_SPEC" && pip_install -e "${FEDGOSSIP_ROOT}[${EXTRAS}]"; }; then
    echo "error: installing into $VENV failed; see pip's messages above" >&2
    exit 1
  fi
  echo "$wanted" > "$stamp"
fi

export PATH="$VENV/bin:$PATH"
# Several ranks share few cores: one thread each avoids oversubscribing the CPU.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
