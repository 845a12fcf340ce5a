"""What the operator may do in the Kubernetes API: the one declared list, and the chart's RBAC from it.

`OPERATOR_PERMISSIONS` lists every request the operator makes, Kopf's own included, each with why.
It was read off the code, not guessed:

- `handlers.py` registers Kopf on InferenceModels (resume/create/update: list, watch, and a patch
  of Kopf's progress and diff-base annotations), an index and an event handler on Pods, and event
  handlers on Deployments, Services and NetworkPolicies (list, watch, label-selected). Kopf posts
  Events with `kopf.info`/`kopf.warn` as core v1 `events` (create only). Kopf runs standalone (no
  peering objects) and, through the API's discovery, scans CustomResourceDefinitions (list, watch)
  to see CRDs come and go; it lists and watches Namespaces only when told which namespaces to serve.
- `kube.py` (the reconciler's own client): GET InferenceModels, Deployments, Services,
  NetworkPolicies and Secrets; POST Deployments, Services and NetworkPolicies; merge PATCH
  Deployments, Services, NetworkPolicies and `inferencemodels/status`. Nothing else: no PUT, no
  DELETE (owner references make the garbage collector delete children), no LIST of its own.

The chart renders RBAC from `files/operator-rules.yaml`, which `render_rules_yaml()` writes
(`scripts/generate-rbac.sh`); `tests/chart` fails when the file drifts from this module and
checks the rendered Roles and ClusterRoles equal these lists, with no wildcard anywhere.

    python -m model_garden_operator.rbac            # print the file
    python -m model_garden_operator.rbac --write P  # write it
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import yaml

from model_garden_common import constants as c

CORE: Final = ""
APPS: Final = "apps"
NETWORKING: Final = "networking.k8s.io"
APIEXTENSIONS: Final = "apiextensions.k8s.io"

# Where a rule is granted:
#   watched  - in each watched namespace: a Role there when the chart's watchNamespaces is set,
#              else part of the operator's ClusterRole (every namespace)
#   cluster  - cluster-scoped resources: always the operator's ClusterRole
Scope = Literal["watched", "cluster"]
# When a rule is needed: always, or only when the operator serves a list of namespaces.
When = Literal["always", "namespaced"]

RULES_FILE: Final = Path("charts/model-garden/files/operator-rules.yaml")


@dataclass(frozen=True)
class Rule:
    """One RBAC PolicyRule and the reason it exists."""

    api_group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str
    scope: Scope = "watched"
    when: When = "always"

    def policy_rule(self) -> dict[str, Any]:
        """As a Kubernetes PolicyRule."""
        return {"apiGroups": [self.api_group], "resources": list(self.resources), "verbs": list(self.verbs)}


# The operator's ServiceAccount.
OPERATOR_PERMISSIONS: Final[tuple[Rule, ...]] = (
    Rule(
        c.API_GROUP,
        (c.PLURAL,),
        ("get", "list", "watch", "patch"),
        "Kopf lists and watches InferenceModels and patches its progress annotations onto them; "
        "the reconciler re-reads each one before it writes",
    ),
    Rule(c.API_GROUP, (f"{c.PLURAL}/status",), ("patch",), "the reconciler writes status"),
    Rule(
        APPS,
        ("deployments",),
        ("get", "list", "watch", "create", "patch"),
        "each model's runtime Deployment: created, patched back on drift, watched by label",
    ),
    Rule(
        CORE,
        ("services",),
        ("get", "list", "watch", "create", "patch"),
        "each model's Service: created, patched back on drift, watched by label",
    ),
    Rule(
        NETWORKING,
        ("networkpolicies",),
        ("get", "list", "watch", "create", "patch"),
        "each model's NetworkPolicy (MODEL_GARDEN_NETWORK_POLICY): created, patched back on drift, "
        "watched by label",
    ),
    Rule(
        CORE, ("pods",), ("list", "watch"), "the models' pods (by label) tell Pending, Loading, crash loops"
    ),
    Rule(
        CORE,
        ("secrets",),
        ("get",),
        "checks that spec.huggingFaceTokenSecret and spec.apiKeySecret exist and hold their keys",
    ),
    Rule(CORE, ("events",), ("create",), "Events on InferenceModels (Kopf posts core v1 Events)"),
    Rule(
        APIEXTENSIONS,
        ("customresourcedefinitions",),
        ("list", "watch"),
        "Kopf scans CRDs to see its resources appear and go",
        scope="cluster",
    ),
    Rule(
        CORE,
        ("namespaces",),
        ("list", "watch"),
        "Kopf follows the namespaces it serves when given a list of them",
        scope="cluster",
        when="namespaced",
    ),
)

# Aggregated into the built-in `view` ClusterRole (and so `edit` and `admin`).
VIEW_PERMISSIONS: Final[tuple[Rule, ...]] = (
    Rule(
        c.API_GROUP,
        (c.PLURAL, f"{c.PLURAL}/status", f"{c.PLURAL}/scale"),
        ("get", "list", "watch"),
        "namespace viewers read InferenceModels",
    ),
)

# Aggregated into the built-in `edit` and `admin` ClusterRoles (view's rules reach them already).
EDIT_PERMISSIONS: Final[tuple[Rule, ...]] = (
    Rule(
        c.API_GROUP,
        (c.PLURAL,),
        ("create", "update", "patch", "delete", "deletecollection"),
        "namespace editors manage InferenceModels",
    ),
    Rule(c.API_GROUP, (f"{c.PLURAL}/scale",), ("update", "patch"), "kubectl scale im"),
)

# Opt-in, bound to nobody by the chart: what `kubectl mg chat` (or `kubectl get --raw`) needs to
# reach a model's Service through the API server. RBAC cannot narrow services/proxy to the models'
# Services (resourceNames would have to name each one), so it reaches every Service in the
# namespaces where it is bound: that is why `view` does not get it silently. The API server maps a
# proxied GET to the verb get and a proxied POST (a chat completion) to create.
SERVICE_PROXY_PERMISSIONS: Final[tuple[Rule, ...]] = (
    Rule(CORE, ("services/proxy",), ("get", "create"), "HTTP GET and POST through the service proxy"),
    Rule(CORE, ("services",), ("get",), "find the model's Service and its port"),
)


def policy_rules(rules: Iterable[Rule]) -> list[dict[str, Any]]:
    return [rule.policy_rule() for rule in rules]


def operator_rules(scope: Scope, *, namespaced: bool) -> list[Rule]:
    """The operator's rules of one scope, for an operator serving a list of namespaces or all."""
    return [
        rule for rule in OPERATOR_PERMISSIONS if rule.scope == scope and (rule.when == "always" or namespaced)
    ]


def chart_rules() -> dict[str, list[dict[str, Any]]]:
    """The chart's rule sets, as its templates read them from files/operator-rules.yaml."""
    return {
        # The operator, in each watched namespace (a Role) or everywhere (its ClusterRole).
        "watched": policy_rules(r for r in OPERATOR_PERMISSIONS if r.scope == "watched"),
        # The operator, cluster-scoped resources: always its ClusterRole.
        "cluster": policy_rules(operator_rules("cluster", namespaced=False)),
        # The operator, cluster-scoped, only with watchNamespaces set.
        "clusterWhenNamespaced": policy_rules(
            r for r in OPERATOR_PERMISSIONS if r.scope == "cluster" and r.when == "namespaced"
        ),
        "view": policy_rules(VIEW_PERMISSIONS),
        "edit": policy_rules(EDIT_PERMISSIONS),
        "serviceProxy": policy_rules(SERVICE_PROXY_PERMISSIONS),
    }


HEADER: Final = (
    "# Generated from operator/model_garden_operator/rbac.py by scripts/generate-rbac.sh: do not edit.\n"
    "# The chart's RBAC templates read these rule sets; tests/chart fails when this file drifts.\n"
)


def render_rules_yaml() -> str:
    return HEADER + yaml.safe_dump(chart_rules(), sort_keys=False, default_flow_style=None, width=110)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print (or write) the chart's RBAC rules file.")
    parser.add_argument("--write", metavar="PATH", help=f"write it to PATH (e.g. {RULES_FILE})")
    args = parser.parse_args(argv)
    text = render_rules_yaml()
    if args.write:
        Path(args.write).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
