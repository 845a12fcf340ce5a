#!/usr/bin/env bash
# Regenerate crds/inferencemodels.modelgarden.io.yaml from the one schema source,
# operator/model_garden_operator/crd_schema.py (tests/unit/test_crd_schema.py fails on drift),
# and the Helm chart's byte-identical copy in charts/model-garden/crds/ (tests/chart checks it).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || python=python3
crd=inferencemodels.modelgarden.io.yaml
"$python" -m model_garden_operator.crd_schema --write "crds/$crd"
mkdir -p charts/model-garden/crds
cp "crds/$crd" "charts/model-garden/crds/$crd"
