"""The HTTP API: an app factory over one InferenceService.

Routes:
- OpenAI: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, each also under /api/v1
  (vLLM's own handlers; see vllm_layer).
- Ours: /api/v1/inference/{load,unload,status,generate} (management.py).
- GET /health: 200 only when a model is loaded and the engine answers (startup/readiness probes).
- GET /livez: 200 while the process lives, model or not (liveness probe).
- GET /metrics (Prometheus, vLLM's engine metrics included), /docs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from model_garden import __version__, vllm_layer
from model_garden.auth import DEFAULT_OPEN_PATHS, ApiKeyMiddleware, KeyRing
from model_garden.inference import InferenceError, InferenceService
from model_garden.management import (
    inference_error_handler,
    management_router,
    settings_error_handler,
)
from model_garden.observability import MetricsMiddleware
from model_garden.timeouts import RequestTimeoutMiddleware
from model_garden.vision.request_limit import RequestSizeLimit
from model_garden_common.constants import HEALTH_PATH, LIVENESS_PATH, METRICS_PATH, OPENAI_PREFIXES
from model_garden_common.limits import LimitExceeded, RequestLimits
from model_garden_common.settings import EngineSettings, SettingsError

logger = logging.getLogger(__name__)

# The OpenAI routes that run the engine, under each of OPENAI_PREFIXES.
GENERATION_ROUTES = ("/chat/completions", "/completions")


@dataclass(frozen=True)
class Preload:
    """A model the server loads at start (serve-model), in the background so probes answer."""

    model_path: str
    settings: EngineSettings
    extra_args: Sequence[str] = ()


def create_app(
    service: InferenceService | None = None,
    *,
    enable_management_routes: bool = True,
    preload: Preload | None = None,
    on_preload_failure: Callable[[BaseException], None] | None = None,
    api_keys: KeyRing | Sequence[str] = (),
    admin_api_keys: KeyRing | Sequence[str] = (),
    open_paths: Sequence[str] = DEFAULT_OPEN_PATHS,
    limits: RequestLimits | None = None,
) -> FastAPI:
    """Build the FastAPI app. `service` defaults to a fresh InferenceService with no model.

    With `api_keys`, every route but `open_paths` needs one of them; with `admin_api_keys`, load
    and unload need one of those instead. A KeyRing re-reads its key files when they change.
    """
    service = service or InferenceService()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loader = asyncio.create_task(_preload(app, service, preload, on_preload_failure)) if preload else None
        try:
            yield
        finally:
            if loader is not None:
                loader.cancel()
            await service.unload_model()

    app = FastAPI(
        title="Model Garden runtime",
        version=__version__,
        description="vLLM behind an OpenAI-compatible API, with model management routes.",
        lifespan=lifespan,
    )
    app.state.service = service
    # vLLM's handlers read app.state.args (and, once a model is loaded, its serving objects).
    app.state.args = vllm_layer.default_vllm_args()

    async def require_model(request: Request) -> None:
        if not service.is_loaded:
            raise HTTPException(503, "No model is loaded yet; retry when GET /health answers 200.")
        _sync_serving_state(request.app, service)

    vllm_layer.register_error_handlers(app)
    app.add_exception_handler(InferenceError, inference_error_handler)
    app.add_exception_handler(SettingsError, settings_error_handler)
    limits = limits or RequestLimits()

    async def prepare_chat(request: Any) -> None:
        _check_limits(limits.check_chat, request)
        # Images are checked (and fetched) by the service before vLLM's handler runs.
        await service.prepare_chat_request(request)

    async def prepare_completion(request: Any) -> None:
        _check_limits(limits.check_sampling, request)

    vllm_layer.register_openai_routes(
        app,
        OPENAI_PREFIXES,
        dependencies=[require_model],
        prepare_chat=prepare_chat,
        prepare_completion=prepare_completion,
    )
    generation_paths = [
        prefix + path for prefix in OPENAI_PREFIXES for path in ("/chat/completions", "/completions")
    ]
    app.add_middleware(RequestTimeoutMiddleware, timeout=limits.request_timeout, paths=generation_paths)
    app.add_middleware(RequestSizeLimit, max_bytes=service.images.settings.max_request_bytes)
    app.include_router(management_router(service, enable_load_unload=enable_management_routes))

    @app.get(LIVENESS_PATH, tags=["Health"])
    async def livez() -> dict[str, str]:
        return {"status": "alive"}

    @app.get(HEALTH_PATH, tags=["Health"], response_model=None)
    async def health() -> dict[str, Any] | JSONResponse:
        if await service.is_healthy():
            return {"status": "ready", "model": service.served_model_name}
        state = "loading" if service.status()["loading"] else "no model loaded"
        return JSONResponse({"status": state}, status_code=503)

    @app.get(METRICS_PATH, tags=["Health"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(vllm_layer.render_metrics(), media_type=vllm_layer.METRICS_CONTENT_TYPE)

    if api_keys or admin_api_keys:
        app.add_middleware(
            ApiKeyMiddleware,
            keys=api_keys,
            admin_keys=admin_api_keys,
            open_paths=list(open_paths),
        )
    # Outermost, so refusals (401) are counted too.
    known_paths = [route.path for route in app.routes if hasattr(route, "path")]
    app.add_middleware(MetricsMiddleware, routes=known_paths)
    return app


def _check_limits(check: Callable[[Any], None], request: Any) -> None:
    try:
        check(request)
    except LimitExceeded as error:
        raise InferenceError(error.message, param=error.param) from None


def _sync_serving_state(app: FastAPI, service: InferenceService) -> None:
    """Point the app's state at the loaded engine's serving objects (vLLM's handlers read them).

    Cheap when nothing changed: one identity check per request.
    """
    engine = service.engine
    if getattr(app.state, "engine_client", None) is engine.client:
        return
    for key, value in vllm_layer.serving_attributes(engine.state).items():
        setattr(app.state, key, value)


async def _preload(
    app: FastAPI,
    service: InferenceService,
    preload: Preload,
    on_failure: Callable[[BaseException], None] | None,
) -> None:
    try:
        await service.load_model(preload.model_path, preload.settings, preload.extra_args)
        _sync_serving_state(app, service)
    except asyncio.CancelledError:
        raise
    except BaseException as error:  # noqa: BLE001 - any failure to load must stop the server
        logger.error("Could not load model %s: %s", preload.model_path, error)
        if on_failure is not None:
            on_failure(error)
