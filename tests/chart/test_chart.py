"""The Helm chart: lint, render, validate, and every value reaching the operator's configuration."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from model_garden_common import constants as c
from model_garden_operator import config as operator_config
from model_garden_operator.config import OperatorConfig, parse_args
from tests.chart.render import (
    CHART,
    CI_VALUES,
    K8S_VERSIONS,
    NAMESPACE,
    ROOT,
    Manifest,
    find,
    helm,
    one,
    operator_deployment,
    operator_env,
    render,
    template,
)

VALUES_FILE = CHART / "values.yaml"
SCHEMA = yaml.safe_load((CHART / "values.schema.json").read_text())
DEFAULT_VALUES = yaml.safe_load(VALUES_FILE.read_text())
KIND_VALUES = CHART / "ci" / "kind-values.yaml"
NAMESPACED_VALUES = CHART / "ci" / "namespaced-values.yaml"
# Every way the chart is rendered in these tests: defaults, then each shipped values file.
VALUES_CASES = [pytest.param((), id="defaults")] + [pytest.param((path,), id=path.stem) for path in CI_VALUES]


def test_helm_lint_strict() -> None:
    helm("lint", "--strict", str(CHART))


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda path: path.stem)
def test_helm_lint_strict_with_each_values_file(values_file: Path) -> None:
    helm("lint", "--strict", str(CHART), "--values", str(values_file))


@pytest.mark.parametrize("values_files", VALUES_CASES)
def test_every_manifest_passes_kubernetes_validate(values_files: tuple[Path, ...]) -> None:
    manifests = render(values_files, crds=True)
    assert {m["kind"] for m in manifests} >= {
        "CustomResourceDefinition",
        "Deployment",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Service",
        "Pod",
    }
    for manifest in manifests:
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(manifest, version, strict=True)


@pytest.mark.parametrize("values_files", VALUES_CASES)
def test_namespaced_objects_go_to_the_release_namespace(values_files: tuple[Path, ...]) -> None:
    for manifest in render(values_files):
        if manifest["kind"] in ("Deployment", "Service", "ServiceAccount", "Pod"):
            assert manifest["metadata"]["namespace"] == NAMESPACE


def test_operator_deployment_shape() -> None:
    deployment = operator_deployment(render())
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/model-garden/operator:0.1.0"
    assert "command" not in container, "the image's entrypoint (model-garden-operator) runs"
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"
    port = next(p for p in container["ports"] if p["name"] == probe["port"])
    assert port["containerPort"] == operator_config.DEFAULT_HEALTH_PORT
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert pod["serviceAccountName"] == one(render(), "ServiceAccount")["metadata"]["name"]


def test_operator_pods_are_not_selected_as_model_pods() -> None:
    # The operator watches pods labelled managed-by=model-garden-operator; its own carry Helm's.
    labels = operator_deployment(render())["spec"]["template"]["metadata"]["labels"]
    assert labels[c.LABEL_MANAGED_BY] != c.MANAGED_BY
    assert labels[c.LABEL_COMPONENT] == c.COMPONENT_OPERATOR
    selector = operator_deployment(render())["spec"]["selector"]["matchLabels"]
    assert selector[c.LABEL_COMPONENT] == c.COMPONENT_OPERATOR
    service = one(render(), "Service")
    assert service["spec"]["selector"] == selector
    test_pod = one(render(), "Pod")
    assert test_pod["metadata"]["labels"][c.LABEL_COMPONENT] != c.COMPONENT_OPERATOR


# --- values -> the operator's configuration ----------------------------------------------------
def config_env_names() -> set[str]:
    return {value for name, value in vars(operator_config).items() if name.startswith("ENV_")}


@pytest.mark.parametrize("values_files", VALUES_CASES)
def test_deployment_sets_exactly_the_operators_env_vars(values_files: tuple[Path, ...]) -> None:
    env = operator_env(render(values_files))
    assert set(env) == config_env_names()


def test_default_values_give_the_operators_defaults() -> None:
    # Chart defaults and config.py defaults (images, GPU resource, domain, log, health port) agree.
    assert OperatorConfig.from_env(operator_env(render())) == OperatorConfig()


def test_chart_version_is_the_project_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
    assert operator_config.DEFAULT_GPU_IMAGE.endswith(f":{project['version']}")


def test_each_value_reaches_the_operator() -> None:
    manifests = render([NAMESPACED_VALUES])
    container = operator_deployment(manifests)["spec"]["template"]["spec"]["containers"][0]
    env = operator_env(manifests)
    config = parse_args(container.get("args", []), env)
    assert config == OperatorConfig(
        gpu_image="registry.example.com/ml/model-garden-runtime:0.1.0-rc1",
        cpu_image="registry.example.com/ml/model-garden-runtime:0.1.0-rc1-cpu",
        gpu_resource_name="amd.com/gpu",
        image_pull_secrets=("registry-credentials", "models-registry"),
        watch_namespaces=("team-a", "team-b"),
        cluster_domain="corp.internal",
        log_level="WARNING",
        log_format="json",
        health_port=9090,
        network_policy=False,
    )
    assert container["image"] == "registry.example.com/ml/model-garden-operator:0.1.0-rc1"
    pod = operator_deployment(manifests)["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert container["livenessProbe"]["httpGet"]["port"] == "health"
    assert {"name": "health", "containerPort": 9090, "protocol": "TCP"} in container["ports"]
    assert one(manifests, "Service")["spec"]["ports"][0]["port"] == 9090
    assert pod["serviceAccountName"] == "model-garden-operator"


def test_kind_values_use_the_locally_loaded_images() -> None:
    manifests = render([KIND_VALUES])
    container = operator_deployment(manifests)["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "model-garden/operator:e2e"
    assert container["imagePullPolicy"] == "Never"
    assert operator_env(manifests)[operator_config.ENV_CPU_IMAGE] == "model-garden/runtime:e2e-cpu"
    # The helm test pod uses the same (loaded) image.
    assert one(manifests, "Pod")["spec"]["containers"][0]["image"] == "model-garden/operator:e2e"


def test_helm_test_pod_checks_crd_and_operator_health() -> None:
    manifests = render()
    pod = one(manifests, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["args"][0]
    compile(script, "helm-test", "exec")  # valid Python
    assert f"{c.PLURAL}.{c.API_GROUP}" in script
    service = one(manifests, "Service")
    assert f"http://{service['metadata']['name']}.{NAMESPACE}.svc:" in script
    assert "/healthz" in script


def test_notes_tell_the_user_what_to_do_next() -> None:
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    for step in (
        "kubectl apply -f examples/",
        "kubectl get im",
        "kubectl mg chat",
        "kubectl apply --server-side",
    ):
        assert step in notes
    for example in re.findall(r"examples/[\w.-]+\.yaml", notes):
        assert (ROOT / example).is_file(), example


# --- values.yaml and values.schema.json ---------------------------------------------------------
KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z][\w-]*):")


def documented_keys() -> list[tuple[str, bool]]:
    """(dotted key, whether a comment sits right above it) for every key of values.yaml."""
    found: list[tuple[str, bool]] = []
    path: list[tuple[int, str]] = []
    previous = ""
    for line in VALUES_FILE.read_text().splitlines():
        match = KEY_LINE.match(line)
        if match:
            indent = len(match["indent"])
            path = [(i, k) for i, k in path if i < indent] + [(indent, match["key"])]
            found.append((".".join(k for _, k in path), previous.strip().startswith("#")))
        if line.strip():
            previous = line
    return found


def leaf_keys(values: Any, prefix: str = "") -> list[str]:
    if isinstance(values, dict) and values:
        return [key for name, sub in values.items() for key in leaf_keys(sub, f"{prefix}{name}.")]
    return [prefix.rstrip(".")]


def test_every_values_key_has_a_comment() -> None:
    keys = documented_keys()
    assert len(keys) > 20
    undocumented = [key for key, commented in keys if not commented]
    assert not undocumented


def test_default_values_meet_the_schema() -> None:
    jsonschema.validate(DEFAULT_VALUES, SCHEMA)
    for path in CI_VALUES:
        jsonschema.validate(yaml.safe_load(path.read_text()), SCHEMA)


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def schema_node(dotted: str) -> dict[str, Any]:
    """The schema of a dotted values key ({} when the schema does not declare it)."""
    node: dict[str, Any] = SCHEMA
    for part in dotted.split("."):
        node = _resolve(node)
        if part in node.get("properties", {}):
            node = node["properties"][part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]  # a map: any key, typed values
        else:
            return {}
    return _resolve(node)


def test_schema_declares_every_values_key() -> None:
    missing = [key for key, _ in documented_keys() if not schema_node(key)]
    assert not missing


def test_readme_references_every_values_key() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Install on Kubernetes") :]
    missing = [key for key in leaf_keys(DEFAULT_VALUES) if f"`{key}`" not in section]
    assert not missing


BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"healthPort": "8080"}, "healthPort"),
    ({"healthPort": 0}, "healthPort"),
    ({"logLevel": "VERBOSE"}, "logLevel"),
    ({"logFormat": "xml"}, "logFormat"),
    ({"watchNamespaces": "team-a"}, "watchNamespaces"),
    ({"watchNamespaces": ["Team_A"]}, "watchNamespaces"),
    ({"modelImagePullSecrets": [{"name": "regcred"}]}, "modelImagePullSecrets"),
    ({"imagePullSecrets": "regcred"}, "imagePullSecrets"),
    ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    ({"image": {"tag": "has space"}}, "tag"),
    ({"runtime": {"gpuImage": {"repository": ""}}}, "repository"),
    ({"runtime": {"gpuResourceName": "not a resource"}}, "gpuResourceName"),
    ({"runtime": {"gpuImages": {}}}, "gpuImages"),
    ({"clusterDomain": "Cluster Local"}, "clusterDomain"),
    ({"rbac": {"create": "yes"}}, "create"),
    ({"resources": {"cpu": 1}}, "cpu"),
    ({"replicaCount": 2}, "replicaCount"),
]


@pytest.mark.parametrize(("values", "key"), BAD_VALUES, ids=[key for _, key in BAD_VALUES])
def test_schema_rejects_bad_values(values: dict[str, Any], key: str) -> None:
    result = template(values=values, check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert key in result.stderr


def test_service_account_name_required_when_not_created() -> None:
    result = template(values={"serviceAccount": {"create": False}}, check=False)
    assert result.returncode != 0 and "serviceAccount.name is required" in result.stderr
    manifests = render(values={"serviceAccount": {"create": False, "name": "existing"}})
    assert not find(manifests, "ServiceAccount")
    assert operator_deployment(manifests)["spec"]["template"]["spec"]["serviceAccountName"] == "existing"


# --- the CRD -------------------------------------------------------------------------------------
CRD_NAME = f"{c.PLURAL}.{c.API_GROUP}.yaml"


def test_chart_crd_is_byte_identical_to_crds_dir() -> None:
    chart_crds = sorted(p.name for p in (CHART / "crds").iterdir())
    assert chart_crds == sorted(p.name for p in (ROOT / "crds").iterdir()) == [CRD_NAME]
    assert (CHART / "crds" / CRD_NAME).read_bytes() == (ROOT / "crds" / CRD_NAME).read_bytes(), (
        "run scripts/generate-crd.sh"
    )


def test_helm_show_crds_gives_the_crd() -> None:
    # The documented upgrade path pipes `helm show crds` into `kubectl apply --server-side`.
    (crd,) = [m for m in yaml.safe_load_all(helm("show", "crds", str(CHART)).stdout) if m]
    assert crd == yaml.safe_load((ROOT / "crds" / CRD_NAME).read_text())


def test_rendered_objects_have_the_chart_labels() -> None:
    manifests: list[Manifest] = render(values={"watchNamespaces": ["a"]})
    for manifest in manifests:
        labels = manifest["metadata"]["labels"]
        assert labels[c.LABEL_NAME] == c.APP_NAME
        assert labels[c.LABEL_INSTANCE] == "model-garden"
        assert labels[c.LABEL_MANAGED_BY] == "Helm"
