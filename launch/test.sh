#!/usr/bin/env bash
# Install fedgossip into .venv, then run the linters and the whole test suite.
#   bash launch/test.sh                 # everything
#   bash launch/test.sh -k dirichlet    # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=launch/env.sh
source launch/env.sh

echo "== ruff"
ruff check fedgossip tests examples
ruff format --check fedgossip tests examples
echo "== pytest"
python -m pytest "$@"
