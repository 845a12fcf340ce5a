"""The engine settings model and its one table of flags."""

from __future__ import annotations

import pytest

from model_garden_common.settings import (
    ENGINE_FLAGS,
    QUANTIZATION_METHODS,
    EngineSettings,
    SettingsError,
    engine_settings,
    find_managed_flag_collisions,
    parse_engine_args,
)


def test_every_field_has_exactly_one_row() -> None:
    assert sorted(row.field for row in ENGINE_FLAGS) == sorted(EngineSettings.model_fields)


def test_defaults_render_the_required_flags_only() -> None:
    assert EngineSettings().to_args() == [
        "--tensor-parallel-size", "1", "--gpu-memory-utilization", "0.9", "--dtype", "auto",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"tensor_parallel_size": 4}, ["--tensor-parallel-size", "4"]),
        ({"quantization": "awq"}, ["--quantization", "awq"]),
        ({"max_model_len": 4096}, ["--max-model-len", "4096"]),
        ({"dtype": "bfloat16"}, ["--dtype", "bfloat16"]),
        ({"served_model_name": "chat"}, ["--served-model-name", "chat"]),
        ({"enforce_eager": True}, ["--enforce-eager"]),
        ({"max_num_seqs": 8}, ["--max-num-seqs", "8"]),
        ({"seed": 3}, ["--seed", "3"]),
        ({"gpu_memory_utilization": 0.85}, ["--gpu-memory-utilization", "0.85"]),
    ],
)
def test_field_to_flags(values: dict[str, object], expected: list[str]) -> None:
    args = EngineSettings(**values).to_args()
    start = args.index(expected[0])
    assert args[start : start + len(expected)] == expected


def test_flags_come_in_table_order() -> None:
    settings = EngineSettings(seed=1, quantization="gptq", max_model_len=10, enforce_eager=True)
    emitted = [arg for arg in settings.to_args() if arg.startswith("--")]
    table_order = [row.flag for row in ENGINE_FLAGS if row.flag in emitted]
    assert emitted == table_order


@pytest.mark.parametrize(
    "settings",
    [
        EngineSettings(),
        EngineSettings(tensor_parallel_size=8, quantization="compressed-tensors", max_model_len=32768),
        EngineSettings(gpu_memory_utilization=0.3333333333333333, dtype="half", served_model_name="x y"),
        EngineSettings(enforce_eager=True, max_num_seqs=1, seed=0),
    ],
)
def test_round_trip(settings: EngineSettings) -> None:
    parsed, rest = parse_engine_args(settings.to_args())
    assert parsed == settings
    assert rest == []


def test_parse_keeps_unmanaged_flags() -> None:
    parsed, rest = parse_engine_args(["-tp", "2", "--enable-prefix-caching", "--max-model-len", "64"])
    assert parsed.tensor_parallel_size == 2 and parsed.max_model_len == 64
    assert rest == ["--enable-prefix-caching"]


@pytest.mark.parametrize("method", QUANTIZATION_METHODS)
def test_each_quantization_method_is_accepted(method: str) -> None:
    assert EngineSettings(quantization=method).to_args()[-2:] != []


def test_squeezellm_is_rejected_with_the_accepted_list() -> None:
    with pytest.raises(SettingsError) as caught:
        engine_settings(quantization="squeezellm")
    message = str(caught.value)
    assert message.startswith("quantization: quantization 'squeezellm' is not supported")
    assert "awq" in message and "compressed-tensors" in message


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"tensor_parallel_size": 0}, "tensor_parallel_size"),
        ({"gpu_memory_utilization": 0}, "gpu_memory_utilization"),
        ({"gpu_memory_utilization": 1.01}, "gpu_memory_utilization"),
        ({"max_model_len": 0}, "max_model_len"),
        ({"dtype": "int3"}, "dtype"),
        ({"served_model_name": ""}, "served_model_name"),
        ({"no_such_field": 1}, "no_such_field"),
    ],
)
def test_invalid_settings_name_the_field(values: dict[str, object], field: str) -> None:
    with pytest.raises(SettingsError, match=field):
        engine_settings(**values)


@pytest.mark.parametrize(
    ("extra", "collisions"),
    [
        (["--enable-prefix-caching"], []),
        (["--tensor-parallel-size", "2"], ["--tensor-parallel-size"]),
        (["--tensor_parallel_size=2"], ["--tensor-parallel-size"]),
        (["-tp", "2"], ["-tp"]),
        (["--model", "other"], ["--model"]),
        (["--max-model-len=1", "--port", "1"], ["--max-model-len", "--port"]),
        (["--served-model-name", "a", "--served-model-name", "b"], ["--served-model-name"]),
    ],
)
def test_managed_flag_collisions(extra: list[str], collisions: list[str]) -> None:
    assert find_managed_flag_collisions(extra) == collisions


def test_request_limits_table_is_complete_and_round_trips() -> None:
    from model_garden_common.limits import LIMIT_FLAGS, RequestLimits

    assert sorted(row.field for row in LIMIT_FLAGS) == sorted(RequestLimits.model_fields)
    args = RequestLimits(max_n=2, request_timeout=1.5).to_args()
    assert args[args.index("--max-n") + 1] == "2"
    assert args[args.index("--request-timeout") + 1] == "1.5"
