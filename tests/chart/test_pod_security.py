"""Pod Security Standard "restricted": the operator pod, the helm test pod and the runtime pods."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from model_garden_common import constants as c
from model_garden_operator.builders import build_deployment
from tests.chart.pss import pod_spec_of, restricted_violations
from tests.chart.render import CI_VALUES, render
from tests.unit.factories import make_config, make_model

VALUES_CASES = [pytest.param((), id="defaults")] + [pytest.param((p,), id=p.stem) for p in CI_VALUES]


@pytest.mark.parametrize("values_files", VALUES_CASES)
def test_chart_pods_are_restricted(values_files: tuple[Path, ...]) -> None:
    workloads = [m for m in render(values_files) if m["kind"] in ("Deployment", "Pod")]
    assert {m["kind"] for m in workloads} == {"Deployment", "Pod"}
    for manifest in workloads:
        pod = pod_spec_of(manifest)
        assert restricted_violations(pod) == [], manifest["metadata"]["name"]
        # The image's non-root user (Dockerfile.operator) is the one the pod asks for.
        assert pod["securityContext"]["runAsUser"] == c.RUNTIME_UID
        assert pod["securityContext"]["runAsGroup"] == c.RUNTIME_GID
        for container in pod["containers"]:
            # Stricter than "restricted" asks: the operator writes nothing but /tmp.
            assert container["securityContext"]["readOnlyRootFilesystem"] is True


RUNTIME_MODELS = {
    "gpu": make_model(),
    "gpu-tp4-awq-pvc": make_model(
        tensor_parallel_size=4,
        quantization="awq",
        cache={"persistentVolumeClaim": {"claimName": "weights"}},
        hugging_face_token_secret={"name": "hf"},
    ),
    "cpu": make_model(accelerator="cpu", cache={"emptyDir": {"sizeLimit": "5Gi"}}),
}


@pytest.mark.parametrize("name", RUNTIME_MODELS)
def test_runtime_pods_the_builders_produce_are_restricted(name: str) -> None:
    pod = pod_spec_of(build_deployment(RUNTIME_MODELS[name], make_config(image_pull_secrets=("r",))))
    assert restricted_violations(pod) == []
    assert pod["securityContext"]["runAsUser"] == c.RUNTIME_UID


# The checker itself: each rule it claims to enforce rejects a pod that breaks it.
def _good_pod() -> dict[str, Any]:
    return copy.deepcopy(pod_spec_of(build_deployment(make_model(), make_config())))


BREAKS = {
    "hostNetwork": lambda p: p.update(hostNetwork=True),
    "hostPath": lambda p: p["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
    "runAsNonRoot": lambda p: (
        p["securityContext"].pop("runAsNonRoot"),
        p["containers"][0]["securityContext"].pop("runAsNonRoot"),
    ),
    "runAsUser 0": lambda p: p["securityContext"].update(runAsUser=0),
    "seccomp": lambda p: p["securityContext"].pop("seccompProfile"),
    "seccomp Unconfined": lambda p: p["containers"][0]["securityContext"].update(
        seccompProfile={"type": "Unconfined"}
    ),
    "allowPrivilegeEscalation": lambda p: p["containers"][0]["securityContext"].pop(
        "allowPrivilegeEscalation"
    ),
    "drop ALL": lambda p: p["containers"][0]["securityContext"].pop("capabilities"),
    "add SYS_ADMIN": lambda p: p["containers"][0]["securityContext"]["capabilities"].update(
        add=["SYS_ADMIN"]
    ),
    "privileged": lambda p: p["containers"][0]["securityContext"].update(privileged=True),
    "hostPort": lambda p: p["containers"][0]["ports"][0].update(hostPort=8000),
    "init container": lambda p: p.update(initContainers=[{"name": "init", "image": "busybox"}]),
    "sysctl": lambda p: p["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
}


@pytest.mark.parametrize("rule", BREAKS)
def test_checker_catches_each_rule(rule: str) -> None:
    pod = _good_pod()
    BREAKS[rule](pod)
    assert restricted_violations(pod)
