"""The chart's RBAC equals the one declared list (model_garden_operator.rbac), with no wildcard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from model_garden_operator import rbac
from tests.chart.render import CHART, CI_VALUES, NAMESPACE, Manifest, find, one, render

RULES_FILE = CHART / "files" / "operator-rules.yaml"
RBAC_KINDS = ("ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding")
FULLNAME = "model-garden"
SERVICE_ACCOUNT = {"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}


def rules(rule_list: Any) -> list[dict[str, Any]]:
    return rbac.policy_rules(rule_list)


def rbac_objects(manifests: list[Manifest]) -> list[Manifest]:
    return [m for m in manifests if m["kind"] in RBAC_KINDS]


def test_rules_file_is_generated_from_the_module() -> None:
    assert RULES_FILE.read_text() == rbac.render_rules_yaml(), "run scripts/generate-rbac.sh"


def test_cluster_wide_operator_role_is_the_declared_list() -> None:
    manifests = render()
    role = one(manifests, "ClusterRole", f"{FULLNAME}-operator")
    assert role["rules"] == rules(rbac.operator_rules("watched", namespaced=False)) + rules(
        rbac.operator_rules("cluster", namespaced=False)
    )
    # Everything the operator needs, nothing it needs only with a namespace list.
    assert role["rules"] == rules(r for r in rbac.OPERATOR_PERMISSIONS if r.when == "always")
    assert not find(manifests, "Role") and not find(manifests, "RoleBinding")
    binding = one(manifests, "ClusterRoleBinding", f"{FULLNAME}-operator")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": f"{FULLNAME}-operator",
    }
    assert binding["subjects"] == [SERVICE_ACCOUNT]


def test_namespaced_operator_gets_roles_and_a_minimal_cluster_role() -> None:
    namespaces = ["team-a", "team-b"]
    manifests = render(values={"watchNamespaces": namespaces})
    cluster_role = one(manifests, "ClusterRole", f"{FULLNAME}-operator")
    assert cluster_role["rules"] == rules(rbac.operator_rules("cluster", namespaced=True))
    assert {tuple(r["resources"]) for r in cluster_role["rules"]} == {
        ("customresourcedefinitions",),
        ("namespaces",),
    }
    roles = find(manifests, "Role")
    bindings = find(manifests, "RoleBinding")
    assert sorted(r["metadata"]["namespace"] for r in roles) == namespaces
    assert sorted(b["metadata"]["namespace"] for b in bindings) == namespaces
    for role in roles:
        assert role["rules"] == rules(rbac.operator_rules("watched", namespaced=True))
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        assert binding["subjects"] == [SERVICE_ACCOUNT]
    # Together: exactly the declared list, once.
    granted = cluster_role["rules"] + roles[0]["rules"]
    assert sorted(map(str, granted)) == sorted(map(str, rules(rbac.OPERATOR_PERMISSIONS)))


def test_user_roles_aggregate_into_view_and_edit() -> None:
    manifests = render()
    view = one(manifests, "ClusterRole", f"{FULLNAME}-view")
    edit = one(manifests, "ClusterRole", f"{FULLNAME}-edit")
    assert view["rules"] == rules(rbac.VIEW_PERMISSIONS)
    assert edit["rules"] == rules(rbac.EDIT_PERMISSIONS)
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    # Viewers never get the service proxy, nor write verbs.
    for rule in view["rules"]:
        assert set(rule["verbs"]) <= {"get", "list", "watch"}
        assert not any("proxy" in resource for resource in rule["resources"])
    assert not any("proxy" in r for rule in edit["rules"] for r in rule["resources"])


def test_service_proxy_role_is_opt_in_and_bound_to_nobody() -> None:
    manifests = render()
    role = one(manifests, "ClusterRole", f"{FULLNAME}-service-proxy")
    assert role["rules"] == rules(rbac.SERVICE_PROXY_PERMISSIONS)
    assert not any(
        key.startswith("rbac.authorization.k8s.io/aggregate") for key in role["metadata"]["labels"]
    )
    for binding in find(manifests, "ClusterRoleBinding") + find(manifests, "RoleBinding"):
        assert binding["roleRef"]["name"] != role["metadata"]["name"]
    assert not find(
        render(values={"rbac": {"serviceProxyRole": False}}), "ClusterRole", role["metadata"]["name"]
    )


def test_rbac_can_be_left_to_the_user() -> None:
    manifests = render(
        values={"rbac": {"create": False, "aggregateToDefaultRoles": False, "serviceProxyRole": False}}
    )
    assert not rbac_objects(manifests)


def _all_strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in _all_strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _all_strings(value)]
    return [node] if isinstance(node, str) else []


@pytest.mark.parametrize(
    "values_files",
    [pytest.param((), id="defaults")] + [pytest.param((p,), id=p.stem) for p in CI_VALUES],
)
def test_no_wildcard_anywhere(values_files: tuple[Path, ...]) -> None:
    objects = rbac_objects(render(values_files))
    assert objects
    for obj in objects:
        for rule in obj.get("rules", []):
            assert not rule.get("nonResourceURLs")
            assert "*" not in _all_strings(rule), obj["metadata"]["name"]
            assert not any(r.endswith("/*") or r.startswith("*/") for r in rule["resources"])
    for rule in rbac.OPERATOR_PERMISSIONS + rbac.VIEW_PERMISSIONS + rbac.EDIT_PERMISSIONS:
        assert "*" not in (rule.api_group, *rule.resources, *rule.verbs)


def test_operator_never_deletes_or_escalates() -> None:
    # Owner references make the garbage collector delete children; nothing grants itself more.
    verbs = {verb for rule in rbac.OPERATOR_PERMISSIONS for verb in rule.verbs}
    assert verbs <= {"get", "list", "watch", "create", "patch"}
    resources = {r for rule in rbac.OPERATOR_PERMISSIONS for r in rule.resources}
    assert not resources & {"roles", "rolebindings", "clusterroles", "clusterrolebindings", "pods/exec"}
