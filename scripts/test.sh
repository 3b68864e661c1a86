#!/usr/bin/env bash
# Run the whole test suite as CI does: system services and browser, lint, types, tests.
# Usage: bash scripts/test.sh [pytest args...]   (after the README's install command)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi
for setup in .ci/install-postgres.sh .ci/install-browser.sh; do
  if [ -f "$setup" ]; then bash "$setup"; fi
done
ruff check poisonguard tests benchmarks
mypy
# every core; tests of one module share a worker (module-scoped servers start once)
pytest -n auto --dist loadscope "$@"
