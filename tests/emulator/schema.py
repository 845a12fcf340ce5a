"""Structural-schema behaviour of the API server for custom resources: defaulting and pruning.

As kube-apiserver does for a CRD with a structural schema: `default`s fill absent fields (on
every write), and fields the schema does not declare are dropped unless a level says
`x-kubernetes-preserve-unknown-fields`. `metadata`, `apiVersion` and `kind` at the root are the
server's and never pruned.
"""

from __future__ import annotations

import copy
from typing import Any

PRESERVE = "x-kubernetes-preserve-unknown-fields"
ROOT_KEYS = ("apiVersion", "kind", "metadata")


def apply_defaults(value: Any, schema: dict[str, Any]) -> None:
    """Fill `default`s of absent properties, recursively, in place."""
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                apply_defaults(value[key], sub)
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for item in value.values():
                apply_defaults(item, additional)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(item, schema["items"])


def prune(value: Any, schema: dict[str, Any], *, root: bool = False) -> None:
    """Drop fields the schema does not declare, recursively, in place."""
    if isinstance(value, dict):
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        for key in list(value):
            if root and key in ROOT_KEYS:
                continue
            if properties is not None and key in properties:
                prune(value[key], properties[key])
            elif isinstance(additional, dict):
                prune(value[key], additional)
            elif not schema.get(PRESERVE) and additional is not True:
                del value[key]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            prune(item, schema["items"])
