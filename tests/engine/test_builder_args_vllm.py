"""The builder's container arguments, fed to vLLM's own argument parser (no engine started).

`serve-model` hands vLLM `--model <path>`, the engine flags and the extraArgs after `--`; here
vLLM's parser must read each of our values back.
"""

from __future__ import annotations

from typing import Any

import pytest

from model_garden_common.settings import (
    DISABLE_MANAGEMENT_OPTION,
    MODEL_FLAG,
    MODEL_PATH_OPTION,
    managed_flags,
)
from model_garden_operator.builders import build_deployment
from model_garden_operator.config import OperatorConfig
from model_garden_operator.spec import find_abbreviated_managed_flags

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def vllm_parser() -> Any:
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    return make_arg_parser(FlexibleArgumentParser())


def model(name: str, **spec: Any) -> dict[str, Any]:
    # A literal object (not tests.unit.factories): this tier must not depend on the unit tier.
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {"model": "org/model", **spec}}


def vllm_argv(obj: dict[str, Any]) -> list[str]:
    """What serve-model passes to vLLM: --model, the engine flags, then the extra args."""
    args = build_deployment(obj, OperatorConfig())["spec"]["template"]["spec"]["containers"][0]["args"]
    engine = args[args.index(DISABLE_MANAGEMENT_OPTION) + 1 :]
    if "--" in engine:
        index = engine.index("--")
        engine = engine[:index] + engine[index + 1 :]
    return [MODEL_FLAG, args[args.index(MODEL_PATH_OPTION) + 1], *engine]


CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "defaults": (
        model("llama"),
        {"model": "org/model", "served_model_name": ["llama"], "tensor_parallel_size": 1, "dtype": "auto"},
    ),
    "everything": (
        model(
            "big",
            servedModelName="big-model",
            tensorParallelSize=8,
            gpuMemoryUtilization=0.85,
            quantization="awq",
            maxModelLen=8192,
            dtype="bfloat16",
            enforceEager=True,
            maxNumSeqs=64,
            seed=3,
            extraArgs=["--max-num-batched-tokens", "4096", "--enable-prefix-caching"],
        ),
        {
            "served_model_name": ["big-model"],
            "tensor_parallel_size": 8,
            "gpu_memory_utilization": 0.85,
            "quantization": "awq",
            "max_model_len": 8192,
            "dtype": "bfloat16",
            "enforce_eager": True,
            "max_num_seqs": 64,
            "seed": 3,
            "max_num_batched_tokens": 4096,
            "enable_prefix_caching": True,
        },
    ),
    "cpu": (
        model("tiny", accelerator="cpu", dtype="float32", quantization="compressed-tensors"),
        {"tensor_parallel_size": 1, "dtype": "float32", "quantization": "compressed-tensors"},
    ),
}


@pytest.mark.parametrize(("obj", "expected"), CASES.values(), ids=CASES.keys())
def test_vllm_reads_our_values(vllm_parser: Any, obj: dict[str, Any], expected: dict[str, Any]) -> None:
    namespace = vllm_parser.parse_args(vllm_argv(obj))
    for key, value in expected.items():
        assert getattr(namespace, key) == value, key


def test_vllm_accepts_abbreviations_which_is_why_we_reject_them(vllm_parser: Any) -> None:
    for abbreviation in ("--tensor-parallel", "-t"):
        namespace = vllm_parser.parse_args([MODEL_FLAG, "m", abbreviation, "2"])
        assert namespace.tensor_parallel_size == 2
        assert find_abbreviated_managed_flags([abbreviation, "2"])


def test_no_vllm_option_is_rejected_as_an_abbreviation(vllm_parser: Any) -> None:
    """An option of vLLM's own that is a prefix of a managed flag would be refused wrongly."""
    managed = set(managed_flags())
    options = list(vllm_parser._option_string_actions)
    wrongly_rejected = [
        option for option in options if option not in managed and find_abbreviated_managed_flags([option])
    ]
    assert wrongly_rejected == []
