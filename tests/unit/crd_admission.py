"""What the API server does with an InferenceModel at admission, approximated offline.

    admit(obj) -> (defaulted object, list of errors)

1. Defaulting from the schema's `default`s (parents before children, as the API server does).
2. The openAPIV3Schema, converted to JSON Schema and checked with `jsonschema`; unknown fields are
   errors, as with kubectl's default strict field validation.
3. Every `x-kubernetes-validations` rule, evaluated with cel-python on the node it is attached to.

Not covered: CEL cost estimation, list-type uniqueness, formats.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import celpy
import jsonschema

from model_garden_operator.crd_schema import crd_manifest

Schema = dict[str, Any]


def root_schema() -> Schema:
    return crd_manifest()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def to_jsonschema(node: Schema) -> Schema:
    """An OpenAPI v3 structural schema node as JSON Schema (draft 2020-12)."""
    out: Schema = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("default", "format", "description"):
            continue
        if key == "properties":
            out[key] = {name: to_jsonschema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = to_jsonschema(value)
        elif key == "anyOf":
            out[key] = [to_jsonschema(sub) for sub in value]
        elif key == "exclusiveMinimum" and value is True:
            out[key] = node["minimum"]
        elif key == "exclusiveMaximum" and value is True:
            out[key] = node["maximum"]
        else:
            out[key] = value
    if node.get("exclusiveMinimum") is True:
        out.pop("minimum", None)
    if node.get("exclusiveMaximum") is True:
        out.pop("maximum", None)
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if "properties" in node and not preserve and "additionalProperties" not in node:
        out["additionalProperties"] = False
    return out


def apply_defaults(node: Schema, value: Any) -> Any:
    """`value` with the schema's defaults filled in (a new object)."""
    value = copy.deepcopy(value)
    _default_into(node, value)
    return value


def _default_into(node: Schema, value: Any) -> None:
    if isinstance(value, dict):
        for name, sub in node.get("properties", {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                _default_into(sub, value[name])
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            for item in value.values():
                _default_into(extra, item)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for item in value:
            _default_into(node["items"], item)


@cache
def compile_rule(rule: str) -> celpy.Runner:
    env = celpy.Environment()
    return env.program(env.compile(rule))


def evaluate_rule(rule: str, self_value: Any) -> bool:
    result = compile_rule(rule).evaluate({"self": celpy.json_to_cel(self_value)})
    if isinstance(result, Exception):
        raise result
    return bool(result)


def cel_errors(node: Schema, value: Any, path: str = "") -> list[str]:
    """Messages of the rules that `value` breaks, as `path: message`."""
    errors = [
        f"{path or '<root>'}: {rule['message']}"
        for rule in node.get("x-kubernetes-validations", [])
        if not evaluate_rule(rule["rule"], value)
    ]
    if isinstance(value, dict):
        for name, sub in node.get("properties", {}).items():
            if name in value:
                errors += cel_errors(sub, value[name], f"{path}.{name}")
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for index, item in enumerate(value):
            errors += cel_errors(node["items"], item, f"{path}[{index}]")
    return errors


def admit(obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    schema = root_schema()
    defaulted = apply_defaults(schema, obj)
    validator = jsonschema.Draft202012Validator(to_jsonschema(schema))
    errors = [
        f"{'.'.join(str(part) for part in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(defaulted)
    ]
    if not errors:  # as the API server: CEL runs on schema-valid objects
        errors = cel_errors(schema, defaulted)
    return defaulted, errors
