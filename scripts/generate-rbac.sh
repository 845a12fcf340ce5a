#!/usr/bin/env bash
# Regenerate the Helm chart's RBAC rule sets, charts/model-garden/files/operator-rules.yaml, from
# the one declared list, operator/model_garden_operator/rbac.py (tests/chart fails on drift).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || python=python3
mkdir -p charts/model-garden/files
exec "$python" -m model_garden_operator.rbac --write charts/model-garden/files/operator-rules.yaml
