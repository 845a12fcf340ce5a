"""`kubectl mg deploy`: an InferenceModel from command-line options, checked before it is sent.

Only the options given go into the spec, so the CRD's defaults (and later changes to them) apply
to the rest. The object is checked with the operator's own `parse_model`, the same check the
reconciler makes, and a bad value is reported against the option that gave it.
"""

from __future__ import annotations

import re
from typing import Any, Final

from model_garden_common import constants as C
from model_garden_operator.crd_spec_schema import ACCELERATOR_CPU
from model_garden_operator.plugin.errors import PluginError
from model_garden_operator.spec import InvalidSpecError, parse_model

# spec field -> the option that sets it (for error messages).
OPTION_OF: Final = {
    "metadata.name": "NAME",
    "spec.model": "--model",
    "spec.tensorParallelSize": "--tensor-parallel-size",
    "spec.quantization": "--quantization",
    "spec.gpuMemoryUtilization": "--gpu-memory-utilization",
    "spec.maxModelLen": "--max-model-len",
    "spec.dtype": "--dtype",
    "spec.replicas": "--replicas",
    "spec.accelerator": "--cpu",
    "spec.servedModelName": "--served-model-name",
    "spec.image": "--image",
    "spec.huggingFaceTokenSecret": "--hf-token-secret",
}


def build_manifest(name: str, namespace: str, **options: Any) -> dict[str, Any]:
    """The InferenceModel for `kubectl mg deploy NAME --model ID ...` (options that are None are left out)."""
    spec: dict[str, Any] = {"model": options.pop("model")}
    if options.pop("cpu", False):
        spec["accelerator"] = ACCELERATOR_CPU
    if secret := options.pop("hf_token_secret", None):
        secret_name, _, key = secret.partition(":")
        spec["huggingFaceTokenSecret"] = {"name": secret_name, **({"key": key} if key else {})}
    for key, value in options.items():
        if value is not None:
            spec[_camel(key)] = value
    return {
        "apiVersion": f"{C.API_GROUP}/{C.API_VERSION}",
        "kind": C.KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def check_manifest(obj: dict[str, Any]) -> None:
    """Raise a one-line PluginError (exit 2, a usage mistake) naming the option at fault."""
    try:
        parse_model(obj)
    except InvalidSpecError as error:
        field = error.field_path
        option = next((opt for path, opt in OPTION_OF.items() if field.startswith(path)), field)
        value = _value_at(obj, field)
        shown = f" {value}" if value is not None and option not in ("--cpu", "NAME") else ""
        raise PluginError(f"invalid {option}{shown}: {error.message}", exit_code=2) from None


def _camel(key: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)


def _value_at(obj: dict[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value if not isinstance(value, dict | list) else None
