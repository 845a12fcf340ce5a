"""parse_model: defaults, engine settings, and the checks the CRD schema cannot declare."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from model_garden_common.settings import QUANTIZATION_METHODS, EngineSettings, parse_engine_args
from model_garden_operator.spec import (
    InvalidSpecError,
    find_abbreviated_managed_flags,
    parse_model,
)
from tests.unit.factories import DEFAULT_MODEL_ID, make_model


def test_defaults() -> None:
    model = parse_model(make_model())
    assert model.name == "llama"
    assert model.namespace == "default"
    spec = model.spec
    assert spec.model == DEFAULT_MODEL_ID
    assert spec.replicas == 1
    assert spec.tensor_parallel_size == 1
    assert spec.accelerator == "gpu"
    assert spec.image is None and spec.gpu_resource_name is None  # the operator's config decides
    assert spec.cache is None and spec.resources is None
    assert spec.service.type == "ClusterIP" and spec.service.port == 80
    assert spec.extra_args == () and spec.env == ()


def test_the_model_is_frozen() -> None:
    model = parse_model(make_model())
    with pytest.raises(pydantic.ValidationError):
        model.spec.replicas = 3  # type: ignore[misc]


def test_served_model_name_defaults_to_the_resource_name() -> None:
    model = parse_model(make_model("qwen"))
    assert model.served_model_name == "qwen"
    assert model.engine.served_model_name == "qwen"
    assert model.engine.to_args()[-2:] == ["--served-model-name", "qwen"]


def test_served_model_name_from_the_spec() -> None:
    model = parse_model(make_model("qwen", servedModelName="Qwen/Qwen2.5"))
    assert model.engine.served_model_name == "Qwen/Qwen2.5"


ENGINE_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "defaults": ({}, {}),
    "tp4": ({"tensorParallelSize": 4}, {"tensor_parallel_size": 4}),
    "everything": (
        {
            "tensorParallelSize": 8,
            "gpuMemoryUtilization": 0.8,
            "quantization": "fp8",
            "maxModelLen": 4096,
            "dtype": "bfloat16",
            "enforceEager": True,
            "maxNumSeqs": 32,
            "seed": 7,
        },
        {
            "tensor_parallel_size": 8,
            "gpu_memory_utilization": 0.8,
            "quantization": "fp8",
            "max_model_len": 4096,
            "dtype": "bfloat16",
            "enforce_eager": True,
            "max_num_seqs": 32,
            "seed": 7,
        },
    ),
    "snake-case-factory": (
        {"max_model_len": 256, "enforce_eager": True},
        {"max_model_len": 256, "enforce_eager": True},
    ),
}


@pytest.mark.parametrize(("overrides", "expected"), ENGINE_CASES.values(), ids=ENGINE_CASES.keys())
def test_engine_settings(overrides: dict[str, Any], expected: dict[str, Any]) -> None:
    engine = parse_model(make_model(**overrides)).engine
    assert engine == EngineSettings(served_model_name="llama", **expected)
    assert parse_engine_args(engine.to_args())[0] == engine


@pytest.mark.parametrize("method", QUANTIZATION_METHODS)
def test_every_quantization_method_is_accepted(method: str) -> None:
    assert parse_model(make_model(quantization=method)).engine.quantization == method


INVALID: dict[str, tuple[dict[str, Any], str]] = {
    "no-model": ({"model": None}, "spec.model"),
    "tp-0": ({"tensorParallelSize": 0}, "spec.tensorParallelSize"),
    "tp-string": ({"tensorParallelSize": "2"}, "spec.tensorParallelSize"),
    "gpu-memory-0": ({"gpuMemoryUtilization": 0}, "spec.gpuMemoryUtilization"),
    "squeezellm": ({"quantization": "squeezellm"}, "spec.quantization"),
    "dtype": ({"dtype": "int4"}, "spec.dtype"),
    "accelerator": ({"accelerator": "tpu"}, "spec.accelerator"),
    "cpu-tp2": ({"accelerator": "cpu", "tensorParallelSize": 2}, "spec.tensorParallelSize"),
    "cpu-gpu-resource": ({"accelerator": "cpu", "gpuResourceName": "nvidia.com/gpu"}, "spec.gpuResourceName"),
    "cache-both": ({"cache": {"persistentVolumeClaim": {"claimName": "m"}, "emptyDir": {}}}, "spec.cache"),
    "cache-neither": ({"cache": {}}, "spec.cache"),
    "pvc-claim": ({"cache": {"persistentVolumeClaim": {}}}, "spec.cache.persistentVolumeClaim.claimName"),
    "size-limit": ({"cache": {"emptyDir": {"sizeLimit": "lots"}}}, "spec.cache.emptyDir.sizeLimit"),
    "env-name": ({"env": [{"value": "x"}]}, "spec.env[0].name"),
    "env-hf-home": ({"env": [{"name": "HF_HOME", "value": "/elsewhere"}]}, "spec.env"),
    "env-hf-token-twice": (
        {"env": [{"name": "HF_TOKEN", "value": "x"}], "huggingFaceTokenSecret": {"name": "hf"}},
        "spec.env",
    ),
    "service-type": ({"service": {"type": "ExternalName"}}, "spec.service.type"),
    "service-port": ({"service": {"port": 0}}, "spec.service.port"),
}


@pytest.mark.parametrize(("overrides", "field_path"), INVALID.values(), ids=INVALID.keys())
def test_invalid_specs_name_the_field(overrides: dict[str, Any], field_path: str) -> None:
    with pytest.raises(InvalidSpecError) as error:
        parse_model(make_model(**overrides))
    assert error.value.field_path == field_path
    assert str(error.value).startswith(f"{field_path}: ")
    assert error.value.message


def test_missing_spec() -> None:
    with pytest.raises(InvalidSpecError) as error:
        parse_model({"metadata": {"name": "llama"}})
    assert error.value.field_path == "spec"


def test_hf_token_in_env_is_fine_without_the_secret_field() -> None:
    env = [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "mine", "key": "t"}}}]
    model = parse_model(make_model(env=env))
    assert [var.to_dict() for var in model.spec.env] == env


# --- extraArgs must not override what the operator manages ------------------------------------------
COLLISIONS: dict[str, tuple[list[str], str, str]] = {
    # id: (extraArgs, flag named in the message, the field to use instead)
    "tp-long": (["--tensor-parallel-size", "2"], "--tensor-parallel-size", "spec.tensorParallelSize"),
    "tp-underscores-equals": (
        ["--tensor_parallel_size=2"],
        "--tensor-parallel-size",
        "spec.tensorParallelSize",
    ),
    "tp-short": (["-tp", "2"], "-tp", "spec.tensorParallelSize"),
    "tp-short-equals": (["-tp=2"], "-tp", "spec.tensorParallelSize"),
    "model": (["--model", "other/model"], "--model", "spec.model"),
    "model-equals": (["--model=other/model"], "--model", "spec.model"),
    "served-name": (["--served-model-name", "x"], "--served-model-name", "spec.servedModelName"),
    "quantization-short": (["-q", "awq"], "-q", "spec.quantization"),
    "gpu-memory": (
        ["--gpu-memory-utilization", "0.5"],
        "--gpu-memory-utilization",
        "spec.gpuMemoryUtilization",
    ),
    "max-model-len": (["--max-model-len", "1"], "--max-model-len", "spec.maxModelLen"),
    "dtype": (["--dtype", "half"], "--dtype", "spec.dtype"),
    "eager": (["--enforce-eager"], "--enforce-eager", "spec.enforceEager"),
    "max-num-seqs": (["--max-num-seqs", "4"], "--max-num-seqs", "spec.maxNumSeqs"),
    "seed": (["--seed", "1"], "--seed", "spec.seed"),
    "port": (["--port", "9000"], "--port", "runtime"),
    "host": (["--host", "::"], "--host", "runtime"),
    "after-other-flags": (["--enable-prefix-caching", "--dtype=half"], "--dtype", "spec.dtype"),
    # vLLM's argparse parser accepts unambiguous abbreviations.
    "abbreviated-tp": (["--tensor-parallel", "2"], "--tensor-parallel-size", "spec.tensorParallelSize"),
    "abbreviated-served": (["--served_model=x"], "--served-model-name", "spec.servedModelName"),
    "abbreviated-short-tp": (["-t", "2"], "-tp", "spec.tensorParallelSize"),
}


@pytest.mark.parametrize(("extra_args", "flag", "instead"), COLLISIONS.values(), ids=COLLISIONS.keys())
def test_extra_args_colliding_with_a_managed_flag_are_rejected(
    extra_args: list[str], flag: str, instead: str
) -> None:
    with pytest.raises(InvalidSpecError) as error:
        parse_model(make_model(extraArgs=extra_args))
    assert error.value.field_path == "spec.extraArgs"
    assert flag in error.value.message
    assert instead in error.value.message


@pytest.mark.parametrize(
    "extra_args",
    [
        [],
        ["--max-num-batched-tokens", "8192"],
        ["--enable-prefix-caching"],
        ["--kv-cache-dtype=fp8", "--max-num-seqs-per-whatever"],
        ["--limit-mm-per-prompt", '{"image": 2}'],
        ["--"],
    ],
)
def test_other_extra_args_pass(extra_args: list[str]) -> None:
    assert parse_model(make_model(extraArgs=extra_args)).spec.extra_args == tuple(extra_args)


def test_abbreviation_finder() -> None:
    tokens = ["--tensor", "--max-model", "--seed", "-tp", "x", "-t=2", "-1", "-", "--", "--m"]
    found = find_abbreviated_managed_flags(tokens)
    assert found[:3] == [
        ("--tensor", "--tensor-parallel-size"),
        ("--max-model", "--max-model-len"),
        ("-t=2", "-tp"),
    ]
    # "--m" abbreviates several managed flags (vLLM would call it ambiguous): reported once.
    assert len(found) == 4 and found[3][0] == "--m" and found[3][1].startswith("--m")
