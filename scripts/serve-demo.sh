#!/usr/bin/env bash
# Quick start: install the runtime (CPU build of vLLM), build the tiny smoke-test model, and serve it
# with the OpenAI API on port 8000. Extra arguments go to `model-garden serve-model`.
#
# The smoke-test model has random weights (its answers are gibberish): it proves the serving path on
# a machine that cannot download weights. To serve a real model:
#   .venv/bin/model-garden serve-model --model-path Qwen/Qwen2.5-0.5B-Instruct
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/install.sh" cpu
bin="$root/.venv/bin"
model_dir="${MODEL_GARDEN_DEMO_MODEL_DIR:-$root/.cache/demo-model}"
if [[ ! -f "$model_dir/config.json" ]]; then
    "$bin/model-garden" create-demo-model "$model_dir"
fi
# vLLM's CPU build sizes its KV cache from this (GiB); 1 is plenty for the tiny model.
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"
echo "==> serving $model_dir as 'demo' on http://0.0.0.0:${PORT:-8000} (ready when GET /health answers 200)"
exec "$bin/model-garden" serve-model --model-path "$model_dir" --served-model-name demo \
    --port "${PORT:-8000}" --dtype float32 --max-model-len 2048 --enforce-eager "$@"
