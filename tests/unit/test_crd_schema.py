"""The InferenceModel CRD: generated file in sync, structural, documented, and it admits what it should."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from model_garden_common import constants as c
from model_garden_common.settings import DTYPES, ENGINE_FLAGS, QUANTIZATION_METHODS, EngineSettings
from model_garden_operator import crd_schema
from model_garden_operator.crd_schema import crd_manifest, render_crd_yaml, spec_schema
from model_garden_operator.crd_spec_schema import ENGINE_FIELDS
from model_garden_operator.spec import InvalidSpecError, parse_model
from tests.unit.crd_admission import admit, compile_rule, root_schema, to_jsonschema
from tests.unit.factories import make_model

REPO = Path(__file__).resolve().parents[2]
CRD_PATH = REPO / "crds" / f"{c.PLURAL}.{c.API_GROUP}.yaml"
LATEST = kubernetes_validate.utils.latest_version()


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node under `node`, with a readable path."""
    yield path or "<root>", node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")
    for index, sub in enumerate(node.get("anyOf", [])):
        yield from walk(sub, f"{path}<anyOf {index}>")


# --- The generated file ---------------------------------------------------------------------------
def test_committed_crd_matches_the_schema_source() -> None:
    assert CRD_PATH.read_text() == render_crd_yaml(), "run scripts/generate-crd.sh and commit the result"


def test_rendering_is_deterministic() -> None:
    assert render_crd_yaml() == render_crd_yaml()


def test_module_prints_and_writes_the_crd(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert crd_schema.main([]) == 0
    assert capsys.readouterr().out == render_crd_yaml()
    target = tmp_path / "crd.yaml"
    assert crd_schema.main(["--write", str(target)]) == 0
    assert target.read_text() == render_crd_yaml()


@pytest.mark.parametrize("version", ["1.30.0", LATEST])
def test_crd_passes_kubernetes_validate(version: str) -> None:
    kubernetes_validate.validate(crd_manifest(), version, strict=True)


# --- Names, versions, columns, subresources -----------------------------------------------------------
def test_names_and_scope() -> None:
    spec = crd_manifest()["spec"]
    assert crd_manifest()["metadata"]["name"] == "inferencemodels.modelgarden.io"
    assert spec["group"] == "modelgarden.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "InferenceModel"
    assert spec["names"]["plural"] == "inferencemodels"
    assert spec["names"]["shortNames"] == ["im"]
    assert [(v["name"], v["served"], v["storage"]) for v in spec["versions"]] == [("v1alpha1", True, True)]


def test_printer_columns() -> None:
    columns = crd_manifest()["spec"]["versions"][0]["additionalPrinterColumns"]
    default_columns = {col["name"]: col["jsonPath"] for col in columns if not col.get("priority")}
    assert default_columns == {
        "Model": ".spec.model",
        "TP": ".spec.tensorParallelSize",
        "Quantization": ".spec.quantization",
        "Ready": ".status.ready",
        "Phase": ".status.phase",
        "Age": ".metadata.creationTimestamp",
    }
    paths = {path for path, _ in walk(root_schema())}
    for column in columns:
        if not column["jsonPath"].startswith(".metadata."):
            assert column["jsonPath"] in paths, column


def test_status_and_scale_subresources() -> None:
    subresources = crd_manifest()["spec"]["versions"][0]["subresources"]
    assert subresources["status"] == {}
    assert subresources["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    paths = {path: node for path, node in walk(root_schema())}
    assert paths[".spec.replicas"]["type"] == "integer"
    assert paths[".status.replicas"]["type"] == "integer"
    assert paths[".status.selector"]["type"] == "string"


def test_status_declares_exactly_the_operators_fields() -> None:
    status = root_schema()["properties"]["status"]
    assert set(status["properties"]) == {
        "phase",
        "conditions",
        "observedGeneration",
        "replicas",
        "readyReplicas",
        "ready",
        "endpoint",
        "selector",
    }
    # Kopf's bookkeeping lives in annotations: nothing undeclared survives in status.
    assert "x-kubernetes-preserve-unknown-fields" not in status
    assert status["properties"]["phase"]["enum"] == [
        "Pending",
        "Loading",
        "Ready",
        "Degraded",
        "Failed",
        "Stopped",
    ]
    condition = status["properties"]["conditions"]["items"]
    assert set(condition["properties"]) == {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    }


# --- Structural and documented ---------------------------------------------------------------------------
def test_schema_is_structural() -> None:
    for path, node in walk(root_schema()):
        if "<anyOf" in path:
            assert set(node) == {"type"}, f"{path}: anyOf branches may only carry a type here"
            continue
        typed = "type" in node
        int_or_string = node.get("x-kubernetes-int-or-string") is True
        preserved = node.get("x-kubernetes-preserve-unknown-fields") is True
        assert typed or int_or_string or preserved, f"{path} has no type"
        if int_or_string:
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
        else:
            assert "anyOf" not in node and "oneOf" not in node and "allOf" not in node, path
        assert not ("properties" in node and "additionalProperties" in node), path
    assert root_schema()["properties"]["metadata"] == {"type": "object"}


def test_every_field_has_a_description() -> None:
    for path, node in walk(root_schema()):
        if path in ("<root>", ".metadata") or "<anyOf" in path or path.endswith(("[]", "{}")):
            continue
        assert node.get("description", "").strip(), f"{path} has no description (kubectl explain)"


def test_defaults_are_valid_for_their_own_schema() -> None:
    for path, node in walk(root_schema()):
        if "default" in node:
            validator = jsonschema.Draft202012Validator(to_jsonschema(node))
            assert not list(validator.iter_errors(node["default"])), path


def test_image_and_gpu_resource_name_have_no_schema_default() -> None:
    # The operator fills them from its configuration, so the chart's values decide.
    properties = spec_schema()["properties"]
    assert "default" not in properties["image"]
    assert "default" not in properties["gpuResourceName"]


def test_every_rule_compiles_with_cel() -> None:
    rules = [rule for _, node in walk(root_schema()) for rule in node.get("x-kubernetes-validations", [])]
    assert len(rules) == 4  # name, cache one-of, cpu tensorParallelSize, cpu gpuResourceName
    for rule in rules:
        assert rule["message"]
        compile_rule(rule["rule"])


# --- One source for engine values ---------------------------------------------------------------------------
def test_quantization_enum_is_the_settings_list() -> None:
    assert tuple(spec_schema()["properties"]["quantization"]["enum"]) == QUANTIZATION_METHODS
    assert "squeezellm" not in spec_schema()["properties"]["quantization"]["enum"]


def test_dtype_enum_is_the_settings_list() -> None:
    assert tuple(spec_schema()["properties"]["dtype"]["enum"]) == DTYPES


def test_every_engine_field_of_the_crd_has_a_flag_row() -> None:
    rows = {row.field for row in ENGINE_FLAGS}
    properties = spec_schema()["properties"]
    for spec_name, field in ENGINE_FIELDS.items():
        assert spec_name in properties, spec_name
        assert field in EngineSettings.model_fields, field
        assert field in rows, f"{field} has no row in settings.ENGINE_FLAGS"
    # ... and every spec field named like an engine setting is in ENGINE_FIELDS.
    for spec_name in properties:
        snake = "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in spec_name)
        if snake in EngineSettings.model_fields:
            assert ENGINE_FIELDS.get(spec_name) == snake


# --- Admission: good and bad objects --------------------------------------------------------------------
GOOD_SPECS: dict[str, dict[str, Any]] = {
    "minimal": {},
    "gpu-full": {
        "servedModelName": "llama-8b",
        "replicas": 2,
        "tensorParallelSize": 4,
        "gpuMemoryUtilization": 0.85,
        "quantization": "awq",
        "maxModelLen": 8192,
        "dtype": "bfloat16",
        "enforceEager": True,
        "maxNumSeqs": 64,
        "seed": 0,
        "extraArgs": ["--enable-prefix-caching"],
        "image": "registry.example/runtime:1",
        "gpuResourceName": "amd.com/gpu",
        "resources": {"limits": {"amd.com/gpu": 4, "memory": "64Gi"}, "requests": {"cpu": "500m"}},
        "env": [{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}],
        "envFrom": [{"secretRef": {"name": "extra"}}],
        "huggingFaceTokenSecret": {"name": "hf", "key": "token"},
        "cache": {"persistentVolumeClaim": {"claimName": "models"}},
        "nodeSelector": {"nvidia.com/gpu.product": "H100"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}
        },
        "priorityClassName": "high",
        "runtimeClassName": "nvidia",
        "service": {"type": "LoadBalancer", "port": 8080},
    },
    "cpu": {"accelerator": "cpu", "cache": {"emptyDir": {"sizeLimit": "5Gi"}}},
    "cpu-tp1-explicit": {"accelerator": "cpu", "tensorParallelSize": 1},
    "cache-empty-dir-no-limit": {"cache": {"emptyDir": {}}},
    "cache-size-limit-int": {"cache": {"emptyDir": {"sizeLimit": 1000000000}}},
    "gpu-memory-utilization-1": {"gpuMemoryUtilization": 1},
    "replicas-0": {"replicas": 0},
    "toleration-empty-effect": {"tolerations": [{"operator": "Exists", "effect": ""}]},
}

BAD_SPECS: dict[str, tuple[dict[str, Any], str]] = {
    "no-model": ({"model": None}, "model"),
    "empty-model": ({"model": ""}, "model"),
    "negative-replicas": ({"replicas": -1}, "replicas"),
    "tp-0": ({"tensorParallelSize": 0}, "tensorParallelSize"),
    "tp-string": ({"tensorParallelSize": "4"}, "tensorParallelSize"),
    "gpu-memory-0": ({"gpuMemoryUtilization": 0}, "gpuMemoryUtilization"),
    "gpu-memory-1.5": ({"gpuMemoryUtilization": 1.5}, "gpuMemoryUtilization"),
    "squeezellm": ({"quantization": "squeezellm"}, "quantization"),
    "dtype-int4": ({"dtype": "int4"}, "dtype"),
    "max-model-len-0": ({"maxModelLen": 0}, "maxModelLen"),
    "accelerator-tpu": ({"accelerator": "tpu"}, "accelerator"),
    "cpu-tp2": ({"accelerator": "cpu", "tensorParallelSize": 2}, "tensorParallelSize"),
    "cpu-gpu-resource": ({"accelerator": "cpu", "gpuResourceName": "nvidia.com/gpu"}, "gpuResourceName"),
    "cache-both": (
        {"cache": {"persistentVolumeClaim": {"claimName": "m"}, "emptyDir": {}}},
        "cache",
    ),
    "cache-neither": ({"cache": {}}, "cache"),
    "pvc-without-claim": ({"cache": {"persistentVolumeClaim": {}}}, "claimName"),
    "bad-size-limit": ({"cache": {"emptyDir": {"sizeLimit": "lots"}}}, "sizeLimit"),
    "bad-resource-quantity": ({"resources": {"limits": {"memory": "much"}}}, "memory"),
    "token-without-name": ({"huggingFaceTokenSecret": {"key": "token"}}, "name"),
    "service-external-name": ({"service": {"type": "ExternalName"}}, "type"),
    "service-port-0": ({"service": {"port": 0}}, "port"),
    "service-port-70000": ({"service": {"port": 70000}}, "port"),
    "extra-args-not-strings": ({"extraArgs": [1]}, "extraArgs"),
    "env-without-name": ({"env": [{"value": "x"}]}, "name"),
}


@pytest.mark.parametrize("overrides", GOOD_SPECS.values(), ids=GOOD_SPECS.keys())
def test_good_specs_are_admitted_and_parse(overrides: dict[str, Any]) -> None:
    defaulted, errors = admit(make_model(**overrides))
    assert errors == []
    parse_model(defaulted)
    parse_model(make_model(**overrides))  # the operator also copes without server defaults


@pytest.mark.parametrize(("overrides", "field"), BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_bad_specs_are_rejected(overrides: dict[str, Any], field: str) -> None:
    _, errors = admit(make_model(**overrides))
    assert errors, "admitted"
    assert any(field in error for error in errors), errors


@pytest.mark.parametrize(("overrides", "field"), BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_spec_py_agrees_with_the_schema(overrides: dict[str, Any], field: str) -> None:
    """What the API server rejects, parse_model rejects too (the emulator validates nothing)."""
    with pytest.raises(InvalidSpecError) as error:
        parse_model(make_model(**overrides))
    assert field in error.value.field_path


def test_unknown_fields_are_rejected_at_admission_and_ignored_by_the_operator() -> None:
    # kubectl's strict field validation rejects them; objects from the API server never carry
    # them (pruned), and an older operator must not choke on a newer CRD's fields.
    _, errors = admit(make_model(tensorParallel=2))
    assert any("tensorParallel" in error for error in errors)
    assert parse_model(make_model(tensorParallel=2)).spec.tensor_parallel_size == 1


def test_defaults_are_applied() -> None:
    defaulted, errors = admit(make_model(huggingFaceTokenSecret={"name": "hf"}))
    assert errors == []
    spec = defaulted["spec"]
    assert spec["replicas"] == 1
    assert spec["tensorParallelSize"] == 1
    assert spec["accelerator"] == "gpu"
    assert spec["service"] == {"type": "ClusterIP", "port": c.DEFAULT_SERVICE_PORT}
    assert spec["huggingFaceTokenSecret"] == {"name": "hf", "key": "HF_TOKEN"}
    assert "image" not in spec and "gpuResourceName" not in spec


# --- The name rule (CEL on the root) ----------------------------------------------------------
GOOD_NAMES = ["llama", "a", "llama-3-8b", "m" + "0" * 62]
BAD_NAMES = ["Llama", "m" + "0" * 63, "3llama", "llama-", "-llama", "lla_ma", "lla.ma"]


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_dns1035_names_are_admitted(name: str) -> None:
    assert admit(make_model(name))[1] == []
    assert parse_model(make_model(name)).name == name


@pytest.mark.parametrize(
    "name",
    BAD_NAMES,
    ids=["uppercase", "64-chars", "leading-digit", "trailing-dash", "leading-dash", "underscore", "dot"],
)
def test_other_names_are_rejected(name: str) -> None:
    errors = admit(make_model(name))[1]
    assert errors and "DNS-1035" in errors[0]
    with pytest.raises(InvalidSpecError) as error:
        parse_model(make_model(name))
    assert error.value.field_path == "metadata.name"
