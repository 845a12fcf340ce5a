"""Engine settings: one validated model, and the one table that maps each field to its vLLM flag.

The runtime CLI's engine options, the load route's body and the operator's container arguments
all come from here. No other file spells an engine flag. This module imports no vLLM (the slim
operator image uses it), so the values vLLM 0.32.0 accepts are listed here; a slow test checks
them against the installed vLLM.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# vllm.model_executor.layers.quantization.QUANTIZATION_METHODS of vLLM 0.32.0, in its order.
# SqueezeLLM (and the other methods vLLM dropped) is not here on purpose.
QUANTIZATION_METHODS: tuple[str, ...] = (
    "awq",
    "auto_awq",
    "fp8",
    "fbgemm_fp8",
    "fp_quant",
    "modelopt",
    "modelopt_fp4",
    "modelopt_mxfp8",
    "modelopt_mixed",
    "auto_gptq",
    "gptq",
    "gptq_marlin",
    "awq_marlin",
    "humming",
    "compressed-tensors",
    "experts_int8",
    "quark",
    "moe_wna16",
    "torchao",
    "inc",
    "mxfp4",
    "gpt_oss_mxfp4",
    "deepseek_v4_fp8",
    "online",
    "fp8_per_tensor",
    "fp8_per_block",
    "fp8_per_channel",
    "int8_per_channel_weight_only",
    "nvfp4_per_token",
    "mxfp8",
)

# vllm.config.model.ModelDType of vLLM 0.32.0.
DTYPES: tuple[str, ...] = ("auto", "half", "float16", "bfloat16", "float", "float32")


class SettingsError(ValueError):
    """Settings that cannot work, with a message a person can act on."""


class EngineSettings(BaseModel):
    """How vLLM runs a model. Every field has a row in ENGINE_FLAGS."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tensor_parallel_size: int = Field(
        1, ge=1, description="Number of GPUs the model is split across (tensor parallelism)."
    )
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="Fraction of each GPU's memory vLLM may use (0 < x <= 1)."
    )
    quantization: str | None = Field(
        None, description="Quantization method of the weights (awq, gptq, fp8, compressed-tensors, ...)."
    )
    max_model_len: int | None = Field(
        None, ge=1, description="Context length (prompt + output tokens); default: the model's own."
    )
    dtype: str = Field("auto", description="Data type of weights and activations.")
    served_model_name: str | None = Field(
        None,
        min_length=1,
        description="Name clients send as `model`; default: the model path.",
    )
    enforce_eager: bool = Field(
        False, description="Run in eager mode, without CUDA graphs or torch.compile (faster start)."
    )
    max_num_seqs: int | None = Field(
        None, ge=1, description="Most sequences the engine schedules in one step; default: vLLM's."
    )
    seed: int | None = Field(None, ge=0, description="Random seed of the engine; default: vLLM's.")

    @field_validator("quantization")
    @classmethod
    def _known_quantization(cls, value: str | None) -> str | None:
        if value is not None and value not in QUANTIZATION_METHODS:
            raise ValueError(
                f"quantization {value!r} is not supported by vLLM 0.32; "
                f"accepted: {', '.join(QUANTIZATION_METHODS)}"
            )
        return value

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, value: str) -> str:
        if value not in DTYPES:
            raise ValueError(f"dtype {value!r} is not supported; accepted: {', '.join(DTYPES)}")
        return value

    def to_args(self) -> list[str]:
        """vLLM command-line flags for these settings, in table order (deterministic)."""
        args: list[str] = []
        for row in ENGINE_FLAGS:
            value = getattr(self, row.field)
            if value is None or value is False:
                continue
            args.append(row.flag)
            if not row.is_switch:
                args.append(_format_value(value))
        return args


@dataclass(frozen=True)
class FlagRow:
    """One field of EngineSettings and the vLLM flag that carries it."""

    field: str
    flag: str
    # Other spellings vLLM's parser accepts for the same option (an extraArgs collision check
    # must catch them too).
    aliases: tuple[str, ...] = ()
    is_switch: bool = False

    @property
    def spellings(self) -> tuple[str, ...]:
        return (self.flag, *self.aliases)


# THE table: field -> vLLM flag. Order is the order flags are emitted in.
ENGINE_FLAGS: tuple[FlagRow, ...] = (
    FlagRow("tensor_parallel_size", "--tensor-parallel-size", aliases=("-tp",)),
    FlagRow("gpu_memory_utilization", "--gpu-memory-utilization"),
    FlagRow("quantization", "--quantization", aliases=("-q",)),
    FlagRow("max_model_len", "--max-model-len"),
    FlagRow("dtype", "--dtype"),
    FlagRow("served_model_name", "--served-model-name"),
    FlagRow("enforce_eager", "--enforce-eager", is_switch=True),
    FlagRow("max_num_seqs", "--max-num-seqs"),
    FlagRow("seed", "--seed"),
)

# Flags the runtime itself sets for vLLM: a user's extra engine flags may not repeat them either.
MODEL_FLAG = "--model"
RUNTIME_MANAGED_FLAGS: tuple[str, ...] = (MODEL_FLAG, "--host", "--port")
# vLLM's own media fetching stays off: the runtime fetches and checks every image (vision/), so
# these vLLM flags may not be given either.
VLLM_MEDIA_FLAGS: tuple[str, ...] = ("--allowed-local-media-path", "--allowed-media-domains")

# Options of `model-garden serve-model` itself (not vLLM's), which the operator's builders write.
SERVE_MODEL_COMMAND: tuple[str, ...] = ("model-garden", "serve-model")
MODEL_PATH_OPTION = "--model-path"
HOST_OPTION = "--host"
PORT_OPTION = "--port"
# Turns off POST /api/v1/inference/load and /unload (operator-managed pods run with it).
DISABLE_MANAGEMENT_OPTION = "--disable-management-routes"
# Seconds in-flight requests get to finish after SIGTERM before the engine stops.
DRAIN_TIMEOUT_OPTION = "--drain-timeout"
# A file of API keys, one per line (operator-managed pods mount a Secret there).
API_KEY_FILE_OPTION = "--api-key-file"


def managed_flags() -> tuple[str, ...]:
    """Every spelling of every flag we manage; extra vLLM flags must not override them."""
    spellings = [spelling for row in ENGINE_FLAGS for spelling in row.spellings]
    return (*spellings, *RUNTIME_MANAGED_FLAGS, *VLLM_MEDIA_FLAGS)


def find_managed_flag_collisions(extra_args: Sequence[str]) -> list[str]:
    """The managed flags that `extra_args` tries to set (in `--flag value` or `--flag=value` form).

    vLLM's parser treats `_` and `-` in long flags alike, so both spellings are caught.
    """
    managed = set(managed_flags())
    collisions: list[str] = []
    for token in extra_args:
        if not token.startswith("-"):
            continue
        name = token.split("=", 1)[0]
        if name.startswith("--"):
            name = "--" + name[2:].replace("_", "-")
        if name in managed and name not in collisions:
            collisions.append(name)
    return collisions


def _format_value(value: Any) -> str:
    # repr() of a float is the shortest round-tripping text (0.9, not 0.90000001).
    return repr(value) if isinstance(value, float) else str(value)


def _engine_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for row in ENGINE_FLAGS:
        if row.is_switch:
            parser.add_argument(*row.spellings, dest=row.field, action="store_true", default=None)
        else:
            parser.add_argument(*row.spellings, dest=row.field, default=None)
    return parser


def parse_engine_args(argv: Iterable[str]) -> tuple[EngineSettings, list[str]]:
    """Split vLLM-style flags into our EngineSettings and the flags we do not manage.

    The inverse of `EngineSettings.to_args()`: `parse_engine_args(s.to_args())[0] == s`.
    """
    namespace, rest = _engine_arg_parser().parse_known_args(list(argv))
    given = {key: value for key, value in vars(namespace).items() if value is not None}
    return engine_settings(**given), rest


def engine_settings(**values: Any) -> EngineSettings:
    """Build EngineSettings, turning pydantic's report into one readable SettingsError."""
    try:
        return EngineSettings(**values)
    except ValidationError as error:
        raise SettingsError(describe_validation_error(error)) from None


def describe_validation_error(error: ValidationError) -> str:
    """`field: reason; field: reason` from a pydantic ValidationError."""
    parts = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "value"
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {message}")
    return "; ".join(parts)
