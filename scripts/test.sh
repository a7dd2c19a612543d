#!/usr/bin/env bash
# Set everything up, then run the whole test suite: lint, types, unit and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest -q -rs -p no:cacheprovider "$@"  # -rs: say why a test was skipped
