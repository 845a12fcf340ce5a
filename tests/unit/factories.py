"""Factories for InferenceModel objects and the operator's configuration, shared by the test tiers.

make_model()                                   # a GPU model, TP 1, namespace "default"
make_model("qwen", tensor_parallel_size=4)     # snake_case or the CRD's camelCase
make_model(accelerator="cpu", cache={"emptyDir": {"sizeLimit": "5Gi"}})
make_model(model=None)                         # None removes a field
"""

from __future__ import annotations

import re
from typing import Any

from model_garden_common import constants as c
from model_garden_operator.config import OperatorConfig

DEFAULT_MODEL_ID = "meta-llama/Llama-3.1-8B-Instruct"


def camel(key: str) -> str:
    """tensor_parallel_size -> tensorParallelSize; camelCase keys pass unchanged."""
    return re.sub(r"_([a-z0-9])", lambda match: match.group(1).upper(), key)


def make_model(
    name: str = "llama", namespace: str | None = "default", **spec_overrides: Any
) -> dict[str, Any]:
    """An InferenceModel object as a client writes it (no server defaults applied)."""
    spec: dict[str, Any] = {"model": DEFAULT_MODEL_ID}
    for key, value in spec_overrides.items():
        if value is None:
            spec.pop(camel(key), None)
        else:
            spec[camel(key)] = value
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {
        "apiVersion": f"{c.API_GROUP}/{c.API_VERSION}",
        "kind": c.KIND,
        "metadata": metadata,
        "spec": spec,
    }


def make_config(**overrides: Any) -> OperatorConfig:
    """The operator's configuration: its defaults, with overrides (e.g. image_pull_secrets=("r",))."""
    return OperatorConfig(**overrides)
