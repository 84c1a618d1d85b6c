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
echo "Next: fedgossip runs · fedgossip partition show datasets/digits-$RANKS · fedgossip summary results/<run>"
