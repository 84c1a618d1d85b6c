#!/usr/bin/env bash
# Install fedgossip into .venv and run the embedded default: split scikit-learn's
# digits across 8 nodes (Dirichlet α=0.5) and show the partition.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=launch/env.sh
source launch/env.sh

fedgossip partition create digits --nodes 8 --scheme dirichlet:alpha=0.5 --out datasets/digits-8 --force
echo
echo "Next: fedgossip partition show datasets/digits-8 --json"
