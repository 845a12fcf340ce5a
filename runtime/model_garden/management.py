"""Our own routes under /api/v1/inference: load, unload, status and generate.

`load` and `unload` are the "management routes"; a server flag turns them off (operator-managed
pods run that way). `status` and `generate` always stay on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from model_garden.inference import InferenceError, InferenceService
from model_garden_common.settings import EngineSettings, SettingsError, find_managed_flag_collisions

logger = logging.getLogger(__name__)


class LoadRequest(EngineSettings):
    """Body of POST /api/v1/inference/load: the engine settings plus the model to load."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_path: str = Field(..., min_length=1, description="Hugging Face model id or local directory.")
    extra_args: list[str] = Field(
        default_factory=list, description="Further vLLM engine flags, e.g. ['--enable-prefix-caching']."
    )

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(**self.model_dump(exclude={"model_path", "extra_args"}))


class GenerateRequest(BaseModel):
    """Body of POST /api/v1/inference/generate."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(..., min_length=1)
    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(0.9, gt=0, le=1)
    stream: bool = False
    images: list[str] | None = Field(None, description="Image URLs or base64 data URLs.")


def management_router(service: InferenceService, *, enable_load_unload: bool) -> APIRouter:
    router = APIRouter(prefix="/api/v1/inference", tags=["Model Garden"])

    if enable_load_unload:

        @router.post("/load")
        async def load(body: LoadRequest) -> dict[str, Any]:
            """Load a model, replacing the loaded one. Answers when the model is ready."""
            if collisions := find_managed_flag_collisions(body.extra_args):
                raise SettingsError(
                    f"extra_args may not set {', '.join(collisions)}: use the matching field instead"
                )
            try:
                return await service.load_model(body.model_path, body.engine_settings(), body.extra_args)
            except (ValueError, OSError) as error:
                # A path that is not a model, a flag vLLM rejects: the client's to fix.
                raise InferenceError(f"cannot load {body.model_path!r}: {error}") from None

        @router.post("/unload")
        async def unload() -> dict[str, Any]:
            """Unload the model and free its memory. Unloading when nothing is loaded is a no-op."""
            return await service.unload_model()

    @router.get("/status")
    async def status() -> dict[str, Any]:
        return service.status()

    @router.post("/generate", response_model=None)
    async def generate(body: GenerateRequest) -> dict[str, Any] | StreamingResponse:
        """Complete a prompt. With `stream: true`, SSE lines `data: {"text", "finish_reason"}`,
        each with only the new text; the last has `finish_reason` set. No `[DONE]` follows."""
        result = await service.generate(
            body.prompt,
            max_tokens=body.max_tokens,
            temperature=body.temperature,
            top_p=body.top_p,
            stream=body.stream,
            images=body.images,
        )
        if isinstance(result, dict):
            return result
        return StreamingResponse(_sse(result), media_type="text/event-stream")

    return router


async def _sse(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    try:
        async for chunk in chunks:
            yield f"data: {json.dumps(chunk)}\n\n"
    except InferenceError as error:
        # The status line is gone already: report the failure as the stream's last event.
        yield f"data: {json.dumps(error.to_body())}\n\n"


async def inference_error_handler(_: Request, error: Exception) -> Any:
    from fastapi.responses import JSONResponse

    assert isinstance(error, InferenceError)
    return JSONResponse(error.to_body(), status_code=error.status_code)


async def settings_error_handler(_: Request, error: Exception) -> Any:
    from fastapi.responses import JSONResponse

    body = InferenceError(str(error)).to_body()
    return JSONResponse(body, status_code=400)
