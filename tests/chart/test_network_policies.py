"""NetworkPolicies: the chart's, for the operator pod, and the one the operator makes per model.

Both must pass kubernetes-validate (strict) for Kubernetes 1.30 and the newest it knows, select
exactly their own pods, and open exactly the ports their pods serve.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from model_garden_common import constants as c
from model_garden_operator.builders import build_deployment, build_network_policy
from tests.chart.render import (
    K8S_VERSIONS,
    NAMESPACE,
    Manifest,
    find,
    one,
    operator_deployment,
    render,
    template,
)
from tests.unit.factories import make_config, make_model

NETWORK_POLICY = "NetworkPolicy"


def assert_valid(manifest: Manifest) -> None:
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(manifest, version, strict=True)


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a LabelSelector with matchLabels only selects a pod with `labels`."""
    assert set(selector) == {"matchLabels"}, selector
    return selector["matchLabels"].items() <= labels.items()


def operator_pod_labels(manifests: list[Manifest]) -> dict[str, str]:
    return operator_deployment(manifests)["spec"]["template"]["metadata"]["labels"]  # type: ignore[no-any-return]


def runtime_pod_labels() -> dict[str, str]:
    deployment = build_deployment(make_model(), make_config())
    return deployment["spec"]["template"]["metadata"]["labels"]  # type: ignore[no-any-return]


# --- The operator pod (chart) ---------------------------------------------------------------------
def test_operator_policy_by_default() -> None:
    manifests = render()
    policy = one(manifests, NETWORK_POLICY)
    assert_valid(policy)
    assert policy["metadata"]["namespace"] == NAMESPACE
    assert (
        policy["spec"]["podSelector"]["matchLabels"]
        == (operator_deployment(manifests)["spec"]["selector"]["matchLabels"])
    )
    assert selects(policy["spec"]["podSelector"], operator_pod_labels(manifests))
    assert not selects(policy["spec"]["podSelector"], runtime_pod_labels())
    # Nor the helm test pod, which needs to reach the API server and the operator.
    assert not selects(policy["spec"]["podSelector"], one(manifests, "Pod")["metadata"]["labels"])


@pytest.mark.parametrize(("values", "port"), [({}, 8080), ({"healthPort": 9090}, 9090)])
def test_operator_policy_admits_only_the_health_port(values: dict[str, Any], port: int) -> None:
    manifests = render(values=values)
    spec = one(manifests, NETWORK_POLICY)["spec"]
    assert "Ingress" in spec["policyTypes"]
    (rule,) = spec["ingress"]
    assert "from" not in rule  # `helm test` and probes, from anywhere
    assert rule["ports"] == [{"protocol": "TCP", "port": port}]
    container = operator_deployment(manifests)["spec"]["template"]["spec"]["containers"][0]
    assert [(p["containerPort"], p["protocol"]) for p in container["ports"]] == [(port, "TCP")]
    assert container["livenessProbe"]["httpGet"]["port"] == "health"


def test_operator_policy_egress_is_the_api_server_and_dns() -> None:
    spec = one(render(), NETWORK_POLICY)["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    api, dns = spec["egress"]
    assert "to" not in api and "to" not in dns  # any address: the API server's is not known
    assert api["ports"] == [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]
    assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


def test_operator_policy_ports_are_values() -> None:
    values = {"networkPolicy": {"operator": {"apiServerPorts": [8443], "dnsPorts": [53, 5353]}}}
    policy = one(render(values=values), NETWORK_POLICY)
    assert_valid(policy)
    api, dns = policy["spec"]["egress"]
    assert api["ports"] == [{"protocol": "TCP", "port": 8443}]
    assert [(p["protocol"], p["port"]) for p in dns["ports"]] == [
        ("UDP", 53),
        ("TCP", 53),
        ("UDP", 5353),
        ("TCP", 5353),
    ]
    no_dns = one(render(values={"networkPolicy": {"operator": {"dnsPorts": []}}}), NETWORK_POLICY)
    assert len(no_dns["spec"]["egress"]) == 1


def test_no_api_server_ports_leaves_egress_open() -> None:
    policy = one(render(values={"networkPolicy": {"operator": {"apiServerPorts": []}}}), NETWORK_POLICY)
    assert_valid(policy)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert "egress" not in policy["spec"]


def test_operator_policy_can_be_turned_off() -> None:
    assert not find(render(values={"networkPolicy": {"operator": {"enabled": False}}}), NETWORK_POLICY)


@pytest.mark.parametrize(
    "values",
    [
        {"networkPolicy": {"operator": {"apiServerPorts": [0]}}},
        {"networkPolicy": {"operator": {"apiServerPorts": ["443"]}}},
        {"networkPolicy": {"operator": {"dnsPorts": [70000]}}},
        {"networkPolicy": {"models": {"enabled": "yes"}}},
        {"networkPolicy": {"runtime": True}},
    ],
    ids=["port-0", "port-text", "port-too-big", "models-not-bool", "unknown-key"],
)
def test_schema_rejects_bad_network_policy_values(values: dict[str, Any]) -> None:
    result = template(values=values, check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr


# --- Each model's runtime pods (the operator's builder) -----------------------------------------------
@pytest.mark.parametrize(
    "model",
    [make_model(), make_model("qwen-vl", namespace="team-a", accelerator="cpu", service={"port": 8080})],
    ids=["gpu", "cpu-other-port"],
)
def test_model_policy_is_valid_and_selects_only_its_pods(model: dict[str, Any]) -> None:
    policy = build_network_policy(model, make_config())
    assert_valid(policy)
    deployment = build_deployment(model, make_config())
    assert selects(policy["spec"]["podSelector"], deployment["spec"]["template"]["metadata"]["labels"])
    assert not selects(policy["spec"]["podSelector"], operator_pod_labels(render()))
    other = build_deployment(make_model("other", namespace=model["metadata"]["namespace"]), make_config())
    assert not selects(policy["spec"]["podSelector"], other["spec"]["template"]["metadata"]["labels"])
    # The pod's port, not the Service's: policies apply after the Service's translation.
    assert policy["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": c.RUNTIME_PORT}]}]


def test_the_chart_turns_model_policies_on_by_default() -> None:
    container = operator_deployment(render())["spec"]["template"]["spec"]["containers"][0]
    env = {var["name"]: var.get("value") for var in container["env"]}
    assert env["MODEL_GARDEN_NETWORK_POLICY"] == "true"
    off = render(values={"networkPolicy": {"models": {"enabled": False}}})
    container = operator_deployment(off)["spec"]["template"]["spec"]["containers"][0]
    assert {var["name"]: var.get("value") for var in container["env"]}[
        "MODEL_GARDEN_NETWORK_POLICY"
    ] == "false"
