#!/usr/bin/env bash
# Install fedgossip into .venv and run the embedded default on 8 ranks: scikit-learn's
# digits split across the ranks (Dirichlet α=0.5), D-PSGD on a ring, then the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=launch/env.sh
source launch/env.sh

RANKS=${FEDGOSSIP_RANKS:-8}
mpiexec -n "$RANKS" fedgossip train
echo
# The default partition is made in fedgossip's cache (README: "Without --data").
CACHE=${FEDGOSSIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fedgossip}
echo "Next: fedgossip runs · fedgossip partition show $CACHE/digits-$RANKS · fedgossip summary results/<run>"
