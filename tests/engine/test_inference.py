"""The Python API, `InferenceService`, in this process on the real engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from model_garden.inference import InferenceError, InferenceService, ModelNotLoadedError
from model_garden_common.settings import SettingsError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def service(demo_model_dir: Path) -> AsyncIterator[InferenceService]:
    service = InferenceService(max_model_len=256, dtype="float32", enforce_eager=True, served_model_name="py")
    await service.load_model(str(demo_model_dir))
    yield service
    await service.unload_model()


async def test_generate_returns_text_finish_reason_usage(service: InferenceService) -> None:
    result = await service.generate("Hello", max_tokens=7, temperature=0)
    assert set(result) == {"text", "finish_reason", "usage"}
    assert result["finish_reason"] == "length"
    assert result["usage"]["completion_tokens"] == 7
    assert result["usage"]["total_tokens"] == result["usage"]["prompt_tokens"] + 7


async def test_generate_streams_new_text_only(service: InferenceService) -> None:
    whole = await service.generate("Hello", max_tokens=6, temperature=0)
    chunks = [
        chunk async for chunk in await service.generate("Hello", max_tokens=6, temperature=0, stream=True)
    ]
    assert all(set(chunk) == {"text", "finish_reason"} for chunk in chunks)
    assert chunks[-1]["finish_reason"] == "length"
    assert "".join(chunk["text"] for chunk in chunks) == whole["text"]


async def test_chat_completion_object_and_chunks(service: InferenceService) -> None:
    reply = await service.chat_completion([{"role": "user", "content": "Hi"}], max_tokens=4)
    assert reply["object"] == "chat.completion"
    assert reply["model"] == "py"
    chunks = [
        c
        async for c in await service.chat_completion(
            [{"role": "user", "content": "Hi"}], stream=True, max_tokens=4
        )
    ]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}


async def test_invalid_requests_raise_inference_error(service: InferenceService) -> None:
    with pytest.raises(InferenceError) as caught:
        await service.generate("Hello", max_tokens=10_000)
    assert caught.value.status_code == 400 and caught.value.param == "max_tokens"
    with pytest.raises(InferenceError) as caught:
        await service.generate("Hello", temperature=-0.5)
    assert caught.value.to_body()["error"]["param"] == "temperature"


def test_settings_are_validated_at_construction() -> None:
    with pytest.raises(SettingsError, match="accepted: awq"):
        InferenceService(quantization="squeezellm")
    with pytest.raises(SettingsError, match="gpu_memory_utilization"):
        InferenceService(gpu_memory_utilization=0)


async def test_unload_frees_the_engine_and_another_model_loads(second_model_dir: Path) -> None:
    service = InferenceService(max_model_len=256, dtype="float32", enforce_eager=True)
    me = psutil.Process()
    before = {child.pid for child in me.children(recursive=True)}
    await service.load_model(str(second_model_dir))
    engine_processes = [c for c in me.children(recursive=True) if c.pid not in before]
    assert engine_processes, "vLLM's engine core runs in a child process"
    assert (await service.generate("Hi", max_tokens=2))["usage"]["completion_tokens"] == 2

    status = await service.unload_model()
    assert status["is_loaded"] is False
    _, alive = psutil.wait_procs(engine_processes, timeout=30)
    assert alive == [], "unload must stop the engine's processes"
    with pytest.raises(ModelNotLoadedError):
        await service.generate("Hi")
