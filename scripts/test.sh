#!/usr/bin/env bash
# Install everything the tests need (CPU vLLM, operator, test tools) and run the whole suite:
# lint, format check, and pytest (every tier; `e2e` tests skip themselves without kind and Docker).
# Extra arguments go to pytest, e.g. `scripts/test.sh tests/unit -q`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install.sh cpu,operator,test
bin="$root/.venv/bin"
echo "==> ruff"
"$bin/ruff" check .
"$bin/ruff" format --check .
echo "==> pytest"
started=$(date +%s)
"$bin/python" -m pytest "${@:--q}"
echo "==> tests took $(( $(date +%s) - started )) s"
