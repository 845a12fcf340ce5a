"""Small constructors for OpenAPI v3 schemas as Kubernetes CRDs want them (structural).

They keep each field of the CRD to one readable call; `crd_spec_schema` and `crd_schema` use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Schema = dict[str, Any]

# Kubernetes' own quantity syntax, as controller-gen writes it for resource.Quantity.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]"
    r"|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def string(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def integer(description: str, **extra: Any) -> Schema:
    return {"type": "integer", "description": description, **extra}


def number(description: str, **extra: Any) -> Schema:
    return {"type": "number", "description": description, **extra}


def boolean(description: str, **extra: Any) -> Schema:
    return {"type": "boolean", "description": description, **extra}


def cel_rule(expression: str, message: str, field_path: str | None = None) -> Schema:
    """An x-kubernetes-validations entry."""
    entry: Schema = {"rule": expression, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def obj(
    description: str,
    properties: Schema,
    *,
    required: Sequence[str] = (),
    rules: Sequence[Schema] = (),
    **extra: Any,
) -> Schema:
    schema: Schema = {"type": "object", "description": description, **extra, "properties": properties}
    if required:
        schema["required"] = list(required)
    if rules:
        schema["x-kubernetes-validations"] = list(rules)
    return schema


def array(description: str, items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "description": description, **extra, "items": items}


def string_map(description: str) -> Schema:
    return {"type": "object", "description": description, "additionalProperties": {"type": "string"}}


def quantity(description: str) -> Schema:
    # Structural int-or-string: no `type`, the two branches carry it.
    return {
        "description": description,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": QUANTITY_PATTERN,
        "x-kubernetes-int-or-string": True,
    }


def opaque_object(description: str) -> Schema:
    # Kubernetes' own nested types (Affinity, EnvFromSource, ...): a full copy of their schema
    # would be thousands of lines; the API server validates them when the operator writes the pod.
    return {"type": "object", "description": description, "x-kubernetes-preserve-unknown-fields": True}
