"""`InferenceService`: the Python API. It owns the vLLM engine's lifecycle and answers requests.

    service = InferenceService(max_model_len=2048)
    await service.load_model("Qwen/Qwen2.5-0.5B-Instruct")
    result = await service.generate("Hello", max_tokens=32)
    async for chunk in await service.generate("Hello", stream=True): ...
    reply = await service.chat_completion([{"role": "user", "content": "Hi"}])
    await service.unload_model()

Requests go through vLLM's own OpenAI serving objects (see vllm_layer), so `generate` validates
parameters, counts usage and reports errors exactly as `/v1/completions` does. The HTTP API
(api.py) and the CLI (cli.py) are thin shells over this class.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any

from model_garden import vllm_layer
from model_garden_common.settings import EngineSettings, engine_settings
from model_garden_common.vision import VisionSettings

logger = logging.getLogger(__name__)


class InferenceError(Exception):
    """A request the service cannot answer, with the HTTP status and OpenAI error fields."""

    def __init__(
        self,
        message: str,
        status_code: int = 400,
        error_type: str = "BadRequestError",
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.error_type = error_type
        self.param = param

    def to_body(self) -> dict[str, Any]:
        return vllm_layer.error_body(self.message, self.status_code, self.error_type, self.param)

    @classmethod
    def from_error_response(cls, response: Any) -> InferenceError:
        error = response.error
        return cls(error.message, error.code, error.type, error.param)


class ModelNotLoadedError(InferenceError):
    def __init__(self) -> None:
        super().__init__(
            "No model is loaded. Load one with POST /api/v1/inference/load or start the server with "
            "`model-garden serve-model --model-path ...`.",
            status_code=503,
            error_type="ServiceUnavailableError",
        )


class InferenceService:
    """One vLLM engine at a time: load, unload, status, generate, chat_completion."""

    def __init__(
        self,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        quantization: str | None = None,
        max_model_len: int | None = None,
        dtype: str = "auto",
        served_model_name: str | None = None,
        *,
        extra_args: Sequence[str] = (),
        vision: VisionSettings | None = None,
        **more_settings: Any,
    ) -> None:
        self.settings: EngineSettings = engine_settings(
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            quantization=quantization,
            max_model_len=max_model_len,
            dtype=dtype,
            served_model_name=served_model_name,
            **more_settings,
        )
        self.extra_args: tuple[str, ...] = tuple(extra_args)
        # Images in requests are checked (and fetched) here before vLLM sees them (vision/).
        from model_garden.vision.pipeline import ImagePipeline

        self.images = ImagePipeline(vision)
        self._engine: vllm_layer.RunningEngine | None = None
        self._model_path: str | None = None
        self._loaded_at: float | None = None
        self._loading: str | None = None
        # Serializes load and unload: two at once would start two engines on one GPU.
        self._lifecycle = asyncio.Lock()

    @classmethod
    def from_settings(
        cls, settings: EngineSettings, extra_args: Sequence[str] = (), vision: VisionSettings | None = None
    ) -> InferenceService:
        return cls(**settings.model_dump(), extra_args=extra_args, vision=vision)

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def is_loaded(self) -> bool:
        return self._engine is not None

    @property
    def engine(self) -> vllm_layer.RunningEngine:
        if self._engine is None:
            raise ModelNotLoadedError()
        return self._engine

    @property
    def served_model_name(self) -> str | None:
        if self._engine is None:
            return None
        names = self._engine.args.served_model_name
        return names[0] if names else self._engine.args.model

    async def load_model(
        self,
        model_path: str,
        settings: EngineSettings | None = None,
        extra_args: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Load a model (a Hugging Face id or a local directory), replacing any loaded one.

        `settings` and `extra_args`, when given, replace the ones the service was built with.
        Raises ValueError for arguments vLLM rejects; the previous model stays unloaded then.
        """
        async with self._lifecycle:
            if settings is not None:
                self.settings = settings
            if extra_args is not None:
                self.extra_args = tuple(extra_args)
            args = vllm_layer.parse_vllm_args(model_path, self.settings, self.extra_args)
            await self._unload_locked()
            self._loading = model_path
            logger.info("Loading model %s", model_path)
            started = time.monotonic()
            try:
                self._engine = await vllm_layer.start_engine(args)
            finally:
                self._loading = None
            self._model_path = model_path
            self._loaded_at = time.time()
            logger.info("Model %s ready in %.1f s", model_path, time.monotonic() - started)
            return self.status()

    async def unload_model(self) -> dict[str, Any]:
        """Stop the engine and free its memory (GPU, KV cache, engine-core process)."""
        async with self._lifecycle:
            await self._unload_locked()
            return self.status()

    async def _unload_locked(self) -> None:
        engine, self._engine = self._engine, None
        self._model_path = None
        self._loaded_at = None
        if engine is not None:
            logger.info("Unloading model %s", engine.args.model)
            await engine.shutdown()

    def status(self) -> dict[str, Any]:
        return {
            "is_loaded": self.is_loaded,
            "model_path": self._model_path,
            "served_model_name": self.served_model_name,
            "loading": self._loading,
            "loaded_at": self._loaded_at,
            "timestamp": time.time(),
        }

    async def is_healthy(self) -> bool:
        """True when a model is loaded and its engine answers."""
        engine = self._engine
        return engine is not None and await vllm_layer.engine_is_healthy(engine.client)

    # --- requests ------------------------------------------------------------------------

    async def generate(
        self,
        prompt: str,
        max_tokens: int = 256,
        temperature: float = 0.7,
        top_p: float = 0.9,
        stream: bool = False,
        images: Sequence[str] | None = None,
        **sampling: Any,
    ) -> dict[str, Any] | AsyncIterator[dict[str, Any]]:
        """Complete `prompt`: `{"text", "finish_reason", "usage"}`, or with `stream=True` an async
        iterator of `{"text", "finish_reason"}` chunks, each carrying only the new text.

        With `images` (URLs or data URLs) the prompt is sent as one user message with those images,
        through the model's chat template, as vision-language models expect.
        """
        common = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p, **sampling}
        if images:
            content: list[dict[str, Any]] = [
                {"type": "image_url", "image_url": {"url": url}} for url in images
            ]
            content.append({"type": "text", "text": prompt})
            result = await self.chat_completion(
                [{"role": "user", "content": content}], stream=stream, **common
            )
            if stream:
                return _chat_chunks_as_text(result)  # type: ignore[arg-type]
            return _chat_result_as_text(result)  # type: ignore[arg-type]

        body = {"model": self.served_model_name, "prompt": prompt, "stream": stream, **common}
        engine = self.engine
        request = _validated(vllm_layer.completion_request, body)
        response = await _answer(engine.state.openai_serving_completion.create_completion(request, None))
        if stream:
            return _text_chunks(_sse_events(response))
        choice = response.choices[0]
        return {
            "text": choice.text,
            "finish_reason": choice.finish_reason,
            "usage": _usage(response.usage.model_dump()),
        }

    async def chat_completion(
        self, messages: Sequence[dict[str, Any]], stream: bool = False, **parameters: Any
    ) -> dict[str, Any] | AsyncIterator[dict[str, Any]]:
        """An OpenAI `chat.completion` object, or with `stream=True` an async iterator of its
        `chat.completion.chunk` objects. `parameters` are any fields of OpenAI's request."""
        engine = self.engine
        messages = await self.prepare_messages(messages)
        body = {"model": self.served_model_name, "messages": list(messages), "stream": stream, **parameters}
        request = _validated(vllm_layer.chat_completion_request, body)
        response = await _answer(engine.state.openai_serving_chat.create_chat_completion(request, None))
        if stream:
            return _sse_events(response)
        return response.model_dump()

    async def prepare_messages(self, messages: Sequence[Any]) -> Sequence[Any]:
        """`messages` with every image checked and inlined (vision/pipeline.py); a refused image
        raises InferenceError (400) naming the limit or rule."""
        from model_garden_common.image_errors import ImageRefused

        try:
            engine = self.engine
            accepts = lambda: vllm_layer.accepts_images(engine)  # noqa: E731 - asked only with images
            return await self.images.prepare(messages, accepts_images=accepts)
        except ImageRefused as refusal:
            raise InferenceError(refusal.describe(), refusal.status_code, param=refusal.param) from None

    async def prepare_chat_request(self, request: Any) -> None:
        """The same for a parsed chat request of vLLM's HTTP route, in place, before vLLM sees it."""
        request.messages = await self.prepare_messages(request.messages)


async def _answer(call: Awaitable[Any]) -> Any:
    """Await a vLLM serving call; its errors (returned or raised) become InferenceError."""
    try:
        response = await call
    except Exception as error:
        # vLLM's serving layer raises client mistakes (VLLMValidationError and friends) and
        # relies on its HTTP exception handlers to turn them into bodies; map them the same way.
        response = vllm_layer.error_response_for(error)
        if response.error.code >= 500:
            logger.exception("Request failed inside vLLM")
    if vllm_layer.is_error_response(response):
        raise InferenceError.from_error_response(response)
    return response


def _validated(build: Any, body: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    try:
        return build(body)
    except ValidationError as error:
        first = error.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise InferenceError(f"{param}: {first['msg']}", param=param) from None


def _usage(usage: dict[str, Any]) -> dict[str, int]:
    return {key: usage[key] for key in ("prompt_tokens", "completion_tokens", "total_tokens")}


async def _sse_events(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """Parse vLLM's SSE strings (`data: {...}\\n\\n` ... `data: [DONE]`) back into objects.

    An error event inside the stream becomes an InferenceError raised from the iterator.
    """
    async for line in lines:
        for event in line.split("\n\n"):
            data = event.removeprefix("data: ").strip()
            if not data or data == "[DONE]":
                continue
            payload = json.loads(data)
            if "error" in payload:
                error = payload["error"]
                raise InferenceError(
                    error.get("message", "generation failed"),
                    error.get("code", 500),
                    error.get("type", "InternalServerError"),
                    error.get("param"),
                )
            yield payload


async def _text_chunks(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    async for event in events:
        for choice in event.get("choices", ()):
            yield {"text": choice.get("text") or "", "finish_reason": choice.get("finish_reason")}


async def _chat_chunks_as_text(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    async for event in events:
        for choice in event.get("choices", ()):
            delta = choice.get("delta") or {}
            yield {"text": delta.get("content") or "", "finish_reason": choice.get("finish_reason")}


def _chat_result_as_text(result: dict[str, Any]) -> dict[str, Any]:
    choice = result["choices"][0]
    return {
        "text": choice["message"].get("content") or "",
        "finish_reason": choice["finish_reason"],
        "usage": _usage(result["usage"]),
    }
