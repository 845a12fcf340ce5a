"""The seam with vLLM's internals (vllm_layer.py) and the fixed lists in settings.py.

vLLM moves its entrypoints between releases; these fail first when the pin changes.
"""

from __future__ import annotations

import typing

import pytest
from fastapi import FastAPI

from model_garden import vllm_layer
from model_garden_common.settings import (
    DTYPES,
    QUANTIZATION_METHODS,
    EngineSettings,
    SettingsError,
    engine_settings,
)

pytestmark = pytest.mark.slow


def test_quantization_methods_match_installed_vllm() -> None:
    from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS as VLLM_METHODS

    assert list(QUANTIZATION_METHODS) == list(VLLM_METHODS)
    assert "squeezellm" not in VLLM_METHODS


def test_dtypes_match_installed_vllm() -> None:
    from vllm.config.model import ModelDType

    assert set(DTYPES) == set(typing.get_args(ModelDType))


def test_our_flags_parse_in_vllms_own_parser() -> None:
    settings = EngineSettings(
        tensor_parallel_size=4,
        gpu_memory_utilization=0.85,
        quantization="awq",
        max_model_len=4096,
        dtype="bfloat16",
        served_model_name="m",
        enforce_eager=True,
        max_num_seqs=64,
        seed=7,
    )
    args = vllm_layer.parse_vllm_args("org/model", settings, ["--enable-prefix-caching"])
    assert args.model == "org/model"
    assert args.tensor_parallel_size == 4
    assert args.gpu_memory_utilization == 0.85
    assert args.quantization == "awq"
    assert args.max_model_len == 4096
    assert args.dtype == "bfloat16"
    assert args.served_model_name == ["m"]
    assert args.enforce_eager is True
    assert args.max_num_seqs == 64
    assert args.seed == 7
    assert args.enable_prefix_caching is True


def test_unknown_vllm_flag_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        vllm_layer.parse_vllm_args("m", engine_settings(), ["--no-such-flag"])


def test_settings_reject_what_vllm_rejects() -> None:
    with pytest.raises(SettingsError, match="squeezellm"):
        engine_settings(quantization="squeezellm")


def test_routes_register_on_an_app() -> None:
    app = FastAPI()
    vllm_layer.register_openai_routes(app, ("/v1", "/api/v1"), dependencies=[])
    vllm_layer.register_error_handlers(app)
    paths = {route.path for route in app.routes}  # type: ignore[attr-defined]
    assert {"/v1/chat/completions", "/api/v1/completions", "/api/v1/models"} <= paths
    body = vllm_layer.error_body("nope", 404, "NotFoundError", "model")
    assert body == {"error": {"message": "nope", "type": "NotFoundError", "param": "model", "code": 404}}
