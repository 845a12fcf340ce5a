"""The chart's ServiceMonitor and PodMonitor for the runtime pods, and the dashboard ConfigMap.

monitoring.coreos.com is not in kubernetes-validate's bundle, so the monitors' shape is checked
here against the part of the Prometheus Operator's CRDs (v1) that the chart uses, by hand: a
misspelt field would be dropped by the API server's pruning and the monitor would silently scrape
nothing.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from model_garden_common import constants as c
from model_garden_operator.builders import build_deployment, build_service
from tests.chart.render import (
    CHART,
    K8S_VERSIONS,
    NAMESPACE,
    Manifest,
    find,
    one,
    operator_deployment,
    render,
)
from tests.unit.factories import make_config, make_model

MONITORS = ("ServiceMonitor", "PodMonitor")
DASHBOARD_FILE = CHART / "dashboards" / "model-garden.json"

# The Prometheus Operator's v1 fields the chart writes (from its CRDs: monitoring.coreos.com_
# servicemonitors.yaml and _podmonitors.yaml), closed with additionalProperties: false.
_STRINGS = {"type": "array", "items": {"type": "string"}}
_DURATION = {
    "type": "string",
    "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
_RELABELING = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "action": {"enum": ["replace", "keep", "drop", "labelmap", "labeldrop", "labelkeep"]},
        "sourceLabels": {"type": "array", "items": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"}},
        "targetLabel": {"type": "string"},
        "regex": {"type": "string"},
        "replacement": {"type": "string"},
    },
}
_ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["port"],
    "properties": {
        "port": {"type": "string"},
        "path": {"type": "string"},
        "interval": _DURATION,
        "relabelings": {"type": "array", "items": _RELABELING},
    },
}
_COMMON_SPEC = {
    "namespaceSelector": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"any": {"type": "boolean"}, "matchNames": _STRINGS},
    },
    "selector": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}},
    },
}


def monitor_schema(kind: str) -> dict[str, Any]:
    endpoints = "endpoints" if kind == "ServiceMonitor" else "podMetricsEndpoints"
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": kind},
            "metadata": {"type": "object", "required": ["name", "namespace", "labels"]},
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["selector", endpoints],
                "properties": {
                    **_COMMON_SPEC,
                    endpoints: {"type": "array", "minItems": 1, "items": _ENDPOINT},
                },
            },
        },
    }


ALL_ON = {"metrics": {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}}}


def runtime_objects() -> tuple[Manifest, Manifest]:
    model = make_model("llama", namespace="team-a")
    return build_deployment(model, make_config()), build_service(model, make_config())


def test_nothing_by_default() -> None:
    manifests = render()
    for kind in MONITORS:
        assert not find(manifests, kind)
    assert not find(manifests, "ConfigMap")


@pytest.mark.parametrize("kind", MONITORS)
def test_monitor_shape(kind: str) -> None:
    monitor = one(render(values=ALL_ON), kind)
    jsonschema.validate(monitor, monitor_schema(kind))
    assert monitor["metadata"]["namespace"] == NAMESPACE
    assert monitor["metadata"]["name"] == "model-garden-runtime"


@pytest.mark.parametrize("kind", MONITORS)
def test_monitor_selects_the_runtime_and_not_the_operator(kind: str) -> None:
    manifests = render(values=ALL_ON)
    selector = one(manifests, kind)["spec"]["selector"]["matchLabels"]
    assert selector == {
        c.LABEL_NAME: c.APP_NAME,
        c.LABEL_MANAGED_BY: c.MANAGED_BY,
        c.LABEL_COMPONENT: c.COMPONENT_RUNTIME,
    }
    deployment, service = runtime_objects()
    selected = service if kind == "ServiceMonitor" else deployment["spec"]["template"]
    assert selector.items() <= selected["metadata"]["labels"].items()
    operator_labels = operator_deployment(manifests)["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= operator_labels.items()


@pytest.mark.parametrize("kind", MONITORS)
def test_monitor_scrapes_the_runtime_port_and_path(kind: str) -> None:
    spec = one(render(values=ALL_ON), kind)["spec"]
    (endpoint,) = spec["endpoints" if kind == "ServiceMonitor" else "podMetricsEndpoints"]
    assert endpoint["path"] == c.METRICS_PATH
    assert endpoint["port"] == c.RUNTIME_PORT_NAME
    assert endpoint["interval"] == "30s"
    deployment, service = runtime_objects()
    if kind == "ServiceMonitor":  # a ServiceMonitor names the Service's port
        assert endpoint["port"] in [port["name"] for port in service["spec"]["ports"]]
    else:  # a PodMonitor names the container's port
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert endpoint["port"] in [port["name"] for port in container["ports"]]
    # The InferenceModel's name, from the label the operator sets, becomes `inference_model`.
    (relabeling,) = endpoint["relabelings"]
    role = "service" if kind == "ServiceMonitor" else "pod"
    label = c.LABEL_INSTANCE.replace(".", "_").replace("/", "_").replace("-", "_")
    assert relabeling == {
        "action": "replace",
        "sourceLabels": [f"__meta_kubernetes_{role}_label_{label}"],
        "targetLabel": "inference_model",
    }


@pytest.mark.parametrize("kind", MONITORS)
def test_monitor_namespaces_follow_watch_namespaces(kind: str) -> None:
    assert one(render(values=ALL_ON), kind)["spec"]["namespaceSelector"] == {"any": True}
    narrow = render(values={**ALL_ON, "watchNamespaces": ["team-a", "team-b"]})
    assert one(narrow, kind)["spec"]["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}


@pytest.mark.parametrize(
    ("kind", "key"), [("ServiceMonitor", "serviceMonitor"), ("PodMonitor", "podMonitor")]
)
def test_monitor_values(kind: str, key: str) -> None:
    values = {"metrics": {key: {"enabled": True, "interval": "15s", "labels": {"release": "kps"}}}}
    manifests = render(values=values)
    monitor = one(manifests, kind)
    jsonschema.validate(monitor, monitor_schema(kind))
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["metadata"]["labels"][c.LABEL_MANAGED_BY] == "Helm"
    endpoints = monitor["spec"]["endpoints" if kind == "ServiceMonitor" else "podMetricsEndpoints"]
    assert endpoints[0]["interval"] == "15s"
    other = "PodMonitor" if kind == "ServiceMonitor" else "ServiceMonitor"
    assert not find(manifests, other)


@pytest.mark.parametrize("interval", ["30", "half a minute", ""])
def test_schema_rejects_a_bad_interval(interval: str) -> None:
    from tests.chart.render import template

    result = template(
        values={"metrics": {"podMonitor": {"enabled": True, "interval": interval}}}, check=False
    )
    assert result.returncode != 0 and "interval" in result.stderr


# --- The dashboard ConfigMap ---------------------------------------------------------------------------
def test_dashboard_config_map() -> None:
    values = {"metrics": {"dashboard": {"enabled": True, "annotations": {"grafana_folder": "LLMs"}}}}
    config_map = one(render(values=values), "ConfigMap")
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(config_map, version, strict=True)
    assert config_map["metadata"]["namespace"] == NAMESPACE
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "LLMs"}
    assert list(config_map["data"]) == ["model-garden.json"]
    assert json.loads(config_map["data"]["model-garden.json"]) == json.loads(DASHBOARD_FILE.read_text())


def test_dashboard_namespace_and_labels_are_values() -> None:
    values = {
        "metrics": {"dashboard": {"enabled": True, "namespace": "monitoring", "labels": {"dash": "yes"}}}
    }
    config_map = one(render(values=values), "ConfigMap")
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert config_map["metadata"]["labels"]["dash"] == "yes"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"  # Helm merges maps
    dropped = {"metrics": {"dashboard": {"enabled": True, "labels": {"grafana_dashboard": None, "d": "1"}}}}
    assert "grafana_dashboard" not in one(render(values=dropped), "ConfigMap")["metadata"]["labels"]
