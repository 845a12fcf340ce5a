"""examples/: every manifest is admitted by the CRD (schema and CEL rules), parsed by the operator,
rendered by the builders into valid, "restricted" Kubernetes objects; other objects are valid too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from model_garden_common import constants as c
from model_garden_common.settings import MODEL_PATH_OPTION, SERVE_MODEL_COMMAND
from model_garden_operator.builders import build_deployment, build_service
from model_garden_operator.config import DEFAULT_CPU_IMAGE, OperatorConfig
from model_garden_operator.spec import parse_model
from tests.chart.pss import pod_spec_of, restricted_violations
from tests.chart.render import K8S_VERSIONS, ROOT
from tests.unit.crd_admission import admit

EXAMPLES = ROOT / "examples"
FILES = sorted(EXAMPLES.glob("*.yaml"))
NAMESPACE = "default"  # what `kubectl apply -f` gives a manifest without one


def docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def models(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in docs(path) if doc["kind"] == c.KIND]


def all_models() -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for path in FILES for m in models(path)}


def valid(manifest: dict[str, Any]) -> None:
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_the_examples_the_issue_asks_for() -> None:
    by_model = {m["spec"]["model"]: m["spec"] for m in all_models().values()}
    assert by_model["Qwen/Qwen2.5-VL-3B-Instruct"].get("tensorParallelSize", 1) == 1
    large = [s for s in by_model.values() if s.get("tensorParallelSize") == 4]
    assert large and "awq" in large[0]["quantization"]
    gpu_text = [s for s in by_model.values() if s.get("tensorParallelSize") == 1 and "VL" not in s["model"]]
    assert gpu_text and gpu_text[0].get("accelerator", "gpu") == "gpu"
    assert any(s.get("accelerator") == "cpu" for s in by_model.values())


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_example(path: Path) -> None:
    manifests = docs(path)
    assert manifests
    config = OperatorConfig()
    for manifest in manifests:
        assert "namespace" not in manifest["metadata"], "examples go where the user applies them"
        if manifest["kind"] != c.KIND:
            valid(manifest)
            if manifest["kind"] in ("Job", "Deployment", "Pod"):
                assert restricted_violations(pod_spec_of(manifest)) == []
            continue
        admitted, errors = admit(manifest)
        assert errors == []
        admitted["metadata"]["namespace"] = NAMESPACE
        model = parse_model(admitted)
        deployment, service = build_deployment(model, config), build_service(model, config)
        valid(deployment)
        valid(service)
        assert restricted_violations(pod_spec_of(deployment)) == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_examples_name_their_pvcs(path: Path) -> None:
    # A model that mounts a claim is shipped with it (in the same file or its step 1).
    claims = {d["metadata"]["name"] for p in FILES for d in docs(p) if d["kind"] == "PersistentVolumeClaim"}
    for model in models(path):
        cache = model["spec"].get("cache", {})
        if "persistentVolumeClaim" in cache:
            assert cache["persistentVolumeClaim"]["claimName"] in claims


def test_cpu_smoke_test_needs_no_download() -> None:
    """The kind example serves the demo model a Job wrote into the volume it mounts."""
    (smoke,) = [m for m in all_models().values() if m["spec"].get("accelerator") == "cpu"]
    spec = smoke["spec"]
    model_path = spec["model"]
    assert model_path.startswith(c.MODEL_CACHE_DIR + "/"), "a path in the cache volume, not a hub id"
    claim = spec["cache"]["persistentVolumeClaim"]["claimName"]
    (job,) = [d for d in docs(EXAMPLES / "cpu-demo-model.yaml") if d["kind"] == "Job"]
    pod = pod_spec_of(job)
    (container,) = pod["containers"]
    assert container["image"] == DEFAULT_CPU_IMAGE  # tests/e2e/kind-e2e.sh swaps it for its build
    assert f"create-demo-model {model_path}" in " ".join(container["command"])
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == c.MODEL_CACHE_DIR)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["persistentVolumeClaim"]["claimName"] == claim
    assert pod["securityContext"]["runAsUser"] == c.RUNTIME_UID
    # The runtime pod reads what the Job wrote, with the same command line as any model.
    deployment = build_deployment(
        {**smoke, "metadata": {**smoke["metadata"], "namespace": NAMESPACE}}, OperatorConfig()
    )
    runtime = deployment["spec"]["template"]["spec"]["containers"][0]
    assert runtime["command"] == list(SERVE_MODEL_COMMAND)
    assert runtime["args"][runtime["args"].index(MODEL_PATH_OPTION) + 1] == model_path
    assert runtime["image"] == DEFAULT_CPU_IMAGE
