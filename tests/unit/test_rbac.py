"""model_garden_operator.rbac against the code: what the handlers and the client do is declared.

The declared list is read off the code; these tests read the code again (the Kopf registry and
every KubeClient call in the handlers) so a new call without its permission fails here, not in a
cluster.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator

import pytest

from model_garden_common import constants as c
from model_garden_operator import handlers, kube, rbac
from model_garden_operator.handlers import make_registry

CLIENT_VERBS = {"get": "get", "create": "create", "patch": "patch"}


def granted(group: str, resource: str, *, scope: rbac.Scope | None = None) -> set[str]:
    return {
        verb
        for rule in rbac.OPERATOR_PERMISSIONS
        if rule.api_group == group and resource in rule.resources and (scope is None or rule.scope == scope)
        for verb in rule.verbs
    }


def kind_group(kind: kube.Kind) -> str:
    # "api/v1" -> core (""), "apis/apps/v1" -> "apps"
    parts = kind.prefix.split("/")
    return "" if parts[0] == "api" else parts[1]


def kopf_selectors() -> Iterator[tuple[str, str, str]]:
    """(registry, group, plural) of every resource handler Kopf runs."""
    registry = make_registry()
    for name, sub in (
        ("indexing", registry._indexing),
        ("watching", registry._watching),
        ("changing", registry._changing),
    ):
        for handler in sub.get_all_handlers():
            selector = handler.selector
            assert selector is not None
            yield name, selector.group or "", selector.any_name or selector.plural or ""


@pytest.mark.parametrize(("registry", "group", "plural"), sorted(set(kopf_selectors())))
def test_kopf_may_list_and_watch_what_it_handles(registry: str, group: str, plural: str) -> None:
    verbs = granted(group, plural, scope="watched")
    assert {"list", "watch"} <= verbs
    if registry == "changing":
        # Kopf's progress and diff-base annotations are patched onto the object.
        assert "patch" in verbs


def client_calls() -> Iterator[tuple[str, str, str | None]]:
    """(client method, Kind constant, subresource) of each KubeClient call in handlers.py."""
    tree = ast.parse(inspect.getsource(handlers))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        target = node.func.value
        is_client = (isinstance(target, ast.Attribute) and target.attr == "client") or (
            isinstance(target, ast.Name) and target.id == "client"
        )
        if not is_client or node.func.attr not in CLIENT_VERBS:
            continue
        assert node.args and isinstance(node.args[0], ast.Name), ast.unparse(node)
        subresource = next((k.value for k in node.keywords if k.arg == "subresource"), None)
        sub = subresource.value if isinstance(subresource, ast.Constant) else None
        yield node.func.attr, node.args[0].id, sub


def test_every_client_call_in_the_handlers_is_granted() -> None:
    calls = set(client_calls())
    assert calls, "the scan found no client call: update this test with the handlers"
    for method, constant, subresource in calls:
        kind: kube.Kind = getattr(kube, constant)
        resource = kind.plural if subresource is None else f"{kind.plural}/{subresource}"
        assert CLIENT_VERBS[method] in granted(kind_group(kind), resource), (method, resource)


def test_apply_needs_get_create_patch_on_the_children() -> None:
    # kube.apply() gets, creates or merge-patches each child kind the handlers apply.
    for kind in handlers.KINDS.values():
        assert {"get", "create", "patch"} <= granted(kind_group(kind), kind.plural)


def test_events_and_cluster_scans() -> None:
    assert granted("", "events") == {"create"}
    assert granted("apiextensions.k8s.io", "customresourcedefinitions", scope="cluster") == {"list", "watch"}
    assert rbac.operator_rules("cluster", namespaced=False)[0].resources == ("customresourcedefinitions",)
    assert any(r.resources == ("namespaces",) for r in rbac.operator_rules("cluster", namespaced=True))


def test_user_roles_cover_the_resource_and_its_subresources() -> None:
    viewed = {r for rule in rbac.VIEW_PERMISSIONS for r in rule.resources}
    assert viewed == {c.PLURAL, f"{c.PLURAL}/status", f"{c.PLURAL}/scale"}


def test_module_prints_and_writes(capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    assert rbac.main([]) == 0
    assert capsys.readouterr().out == rbac.render_rules_yaml()
