"""The one seam between Model Garden and vLLM's server internals (`vllm.entrypoints.*`).

Everything we borrow from vLLM's OpenAI server lives behind this module: its argument parser (so a
load through our API and a start from the CLI take the same path), the engine client, the serving
objects (chat templates, multimodal parsing, parameter validation, chunk shapes and error bodies
identical to vLLM's own server), its route handlers, exception handlers and metrics. Those
internals move between vLLM releases, which is why vLLM is pinned and why one smoke test
(tests/engine/test_vllm_layer.py) watches this seam.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from starlette.datastructures import State

from model_garden_common.settings import MODEL_FLAG, VLLM_MEDIA_FLAGS, EngineSettings

logger = logging.getLogger(__name__)


def parse_vllm_args(model_path: str, settings: EngineSettings, extra_args: Sequence[str] = ()) -> Any:
    """vLLM's own serve-argument namespace for a model, our settings and extra vLLM flags.

    Raises SystemExit-free errors: argparse problems come back as ValueError with vLLM's message.
    """
    from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = make_arg_parser(FlexibleArgumentParser(exit_on_error=False))
    argv = [MODEL_FLAG, model_path, *settings.to_args(), *extra_args]
    try:
        args = parser.parse_args(argv)
    except argparse.ArgumentError as error:
        raise ValueError(str(error)) from None
    except SystemExit:
        # Some argparse paths exit even with exit_on_error=False (e.g. unknown arguments).
        raise ValueError(f"vLLM rejected the engine arguments: {' '.join(argv[2:])}") from None
    validate_parsed_serve_args(args)
    if args.allowed_local_media_path or args.allowed_media_domains:
        # Defence in depth beside the managed-flag check: vLLM must never open files or fetch.
        raise ValueError(
            f"{' and '.join(VLLM_MEDIA_FLAGS)} are not used: Model Garden fetches and checks images "
            "itself (--allowed-image-hosts, --allowed-local-image-dir)"
        )
    return args


def default_vllm_args() -> Any:
    """vLLM's defaults, for handlers that read `app.state.args` before any model is loaded."""
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    return make_arg_parser(FlexibleArgumentParser()).parse_args([])


@dataclass
class RunningEngine:
    """A started vLLM engine and the OpenAI serving objects built over it."""

    client: Any  # vllm.v1.engine.async_llm.AsyncLLM
    args: Any
    supported_tasks: tuple[str, ...]
    state: State
    _exit_stack: AsyncExitStack = field(repr=False, default_factory=AsyncExitStack)

    async def shutdown(self) -> None:
        # The heap was frozen after start-up (see start_engine): unfreeze so this engine's objects
        # can be collected, or every reload would leak the previous engine's Python state.
        gc.unfreeze()
        await self._exit_stack.aclose()
        gc.collect()


async def start_engine(args: Any) -> RunningEngine:
    """Start vLLM's async engine for `args` and build its OpenAI serving objects.

    The engine's construction blocks (config load, engine-core process start, weight load, KV-cache
    profiling): it runs in a worker thread so the event loop keeps answering liveness probes.
    """
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.entrypoints.launchers.api_server.app_state import init_app_state
    from vllm.usage.usage_lib import UsageContext
    from vllm.utils.gc_utils import freeze_gc_heap
    from vllm.v1.engine.async_llm import AsyncLLM

    def construct() -> Any:
        engine_args = AsyncEngineArgs.from_cli_args(args)
        vllm_config = engine_args.create_engine_config(usage_context=UsageContext.OPENAI_API_SERVER)
        return AsyncLLM.from_vllm_config(
            vllm_config=vllm_config,
            usage_context=UsageContext.OPENAI_API_SERVER,
            enable_log_requests=engine_args.enable_log_requests,
            aggregate_engine_logging=engine_args.aggregate_engine_logging,
            disable_log_stats=engine_args.disable_log_stats,
        )

    client = await asyncio.to_thread(construct)
    stack = AsyncExitStack()
    stack.callback(client.shutdown)
    try:
        # Built outside the loop, the client starts its output handler lazily; start it now so
        # an engine-core failure is noticed before the first request.
        await client.reset_mm_cache()
        supported_tasks = tuple(await client.get_supported_tasks())
        state = State()
        await init_app_state(client, state, args, supported_tasks)
    except BaseException:
        await stack.aclose()
        raise
    if not args.disable_log_stats:
        # vLLM's server logs engine stats (throughput, KV-cache use) every few seconds; so do we.
        stats_task = asyncio.create_task(_log_stats_forever(client))
        stack.callback(stats_task.cancel)
    # As vLLM's server does after start-up: move the start-up heap (model config, tokenizer,
    # serving objects) out of the collector's way, so full collections under load stay short.
    freeze_gc_heap()
    return RunningEngine(client, args, supported_tasks, state, stack)


async def _log_stats_forever(client: Any) -> None:
    import vllm.envs as envs

    while True:
        await asyncio.sleep(envs.VLLM_LOG_STATS_INTERVAL)
        await client.do_log_stats()


def serving_attributes(state: State) -> dict[str, Any]:
    """The attributes init_app_state() set, to copy onto the FastAPI app's state."""
    return dict(state._state)


def register_openai_routes(
    app: FastAPI,
    prefixes: Sequence[str],
    dependencies: Sequence[Any],
    prepare_chat: Callable[[Any], Awaitable[None]] | None = None,
    prepare_completion: Callable[[Any], Awaitable[None]] | None = None,
) -> None:
    """vLLM's own handlers for chat, completions and models, under each prefix.

    `dependencies` run first (we use one to answer 503 while no model is loaded). `prepare_chat`
    and `prepare_completion`, when given, get each parsed request before vLLM's handler does (we
    check request limits there, and check and inline a chat request's images, so vLLM never
    fetches a URL).
    """
    from vllm.entrypoints.openai.chat_completion import api_router as chat
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.entrypoints.openai.completion import api_router as completion
    from vllm.entrypoints.openai.completion.protocol import CompletionRequest
    from vllm.entrypoints.openai.models import api_router as models
    from vllm.entrypoints.serve.utils.api_utils import validate_json_request

    routes = (
        (
            "/chat/completions",
            _prepared_endpoint(chat.create_chat_completion, ChatCompletionRequest, prepare_chat),
            "POST",
            True,
        ),
        (
            "/completions",
            _prepared_endpoint(completion.create_completion, CompletionRequest, prepare_completion),
            "POST",
            True,
        ),
        ("/models", models.show_available_models, "GET", False),
    )
    for prefix in prefixes:
        router = APIRouter(prefix=prefix, tags=["OpenAI"])
        for path, endpoint, method, takes_json in routes:
            route_dependencies = [Depends(dependency) for dependency in dependencies]
            if takes_json:
                route_dependencies.insert(0, Depends(validate_json_request))
            router.add_api_route(path, endpoint, methods=[method], dependencies=route_dependencies)
        app.include_router(router)


def _prepared_endpoint(
    endpoint: Callable[..., Awaitable[Any]],
    request_class: type,
    prepare: Callable[[Any], Awaitable[None]] | None,
) -> Callable[..., Awaitable[Any]]:
    """vLLM's endpoint behind `prepare`, with the signature FastAPI reads the body from."""
    if prepare is None:
        return endpoint
    from fastapi import Request

    async def prepared(request: Any, raw_request: Any) -> Any:
        await prepare(request)
        return await endpoint(request, raw_request)

    prepared.__name__ = endpoint.__name__
    # Real classes, not this module's postponed (string) annotations: FastAPI resolves strings
    # in the module's globals, where these two are not.
    prepared.__annotations__ = {"request": request_class, "raw_request": Request}
    return prepared


def accepts_images(engine: RunningEngine) -> bool:
    """Whether the loaded model takes images (a vision-language model with images allowed)."""
    config = engine.client.model_config
    multimodal = config.multimodal_config
    return multimodal is not None and multimodal.get_limit_per_prompt("image") > 0


def register_error_handlers(app: FastAPI) -> None:
    """vLLM's exception handlers: the same status and body as vLLM's server for the same mistake."""
    from vllm.entrypoints.serve.exception_handling.register import init_exception_handler

    init_exception_handler(app)


METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render_metrics() -> bytes:
    """The Prometheus text of vLLM's registry: its engine metrics (`vllm:*`) and ours."""
    from prometheus_client import generate_latest
    from vllm.v1.metrics.prometheus import get_prometheus_registry

    return generate_latest(get_prometheus_registry())


def error_body(message: str, status_code: int, error_type: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error body, built by vLLM's own model so the shape cannot drift."""
    from vllm.entrypoints.serve.engine.protocol import ErrorInfo, ErrorResponse

    return ErrorResponse(
        error=ErrorInfo(message=message, type=error_type, param=param, code=status_code)
    ).model_dump()


def completion_request(body: dict[str, Any]) -> Any:
    from vllm.entrypoints.openai.completion.protocol import CompletionRequest

    return CompletionRequest.model_validate(body)


def chat_completion_request(body: dict[str, Any]) -> Any:
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

    return ChatCompletionRequest.model_validate(body)


def error_response_for(exc: Exception) -> Any:
    """vLLM's ErrorResponse for an exception its serving layer raised (what its handlers send)."""
    from vllm.entrypoints.serve.exception_handling.error_response import create_error_response

    return create_error_response(exc)


def is_error_response(value: Any) -> bool:
    from vllm.entrypoints.serve.engine.protocol import ErrorResponse

    return isinstance(value, ErrorResponse)


async def engine_is_healthy(client: Any) -> bool:
    from vllm.v1.engine.exceptions import EngineDeadError

    try:
        await client.check_health()
    except EngineDeadError:
        return False
    return True
