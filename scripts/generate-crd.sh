#!/usr/bin/env bash
# Regenerate crds/inferencemodels.modelgarden.io.yaml from the one schema source,
# operator/model_garden_operator/crd_schema.py (tests/unit/test_crd_schema.py fails on drift).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || python=python3
exec "$python" -m model_garden_operator.crd_schema --write crds/inferencemodels.modelgarden.io.yaml
