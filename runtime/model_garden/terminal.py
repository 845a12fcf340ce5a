"""`inference-generate` and `inference-chat`: a model loaded in this process, answers on stdout.

vLLM is chatty (its engine process logs to stdout and stderr). Unless --verbose, loading happens
with both file descriptors pointed at a log file, which the engine process inherits and keeps, so
stdout carries only answers; a spinner with the elapsed time shows on the terminal meanwhile, and on
failure the log's tail is shown with the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, TextIO

from model_garden_common.settings import EngineSettings
from model_garden_common.vision import VisionSettings

_QUIET_ENV = {
    "VLLM_LOGGING_LEVEL": "ERROR",
    "TRANSFORMERS_VERBOSITY": "error",
    "TQDM_DISABLE": "1",
    "PYTHONWARNINGS": "ignore",
}


@contextlib.contextmanager
def _quiet_fds(verbose: bool) -> Iterator[tuple[TextIO, str | None]]:
    """Point fds 1 and 2 at a log file (unless verbose); yield a stream to the real terminal."""
    if verbose:
        yield sys.stderr, None
        return
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    log = tempfile.NamedTemporaryFile(prefix="model-garden-", suffix=".log", delete=False)  # noqa: SIM115
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved_err), "w", buffering=1)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    try:
        yield terminal, log.name
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)
        terminal.close()
        log.close()


def _log_tail(path: str | None, lines: int = 15) -> str:
    if not path:
        return ""
    with contextlib.suppress(OSError), open(path, errors="replace") as handle:
        return "".join(handle.readlines()[-lines:])
    return ""


def load_in_process(
    loop: asyncio.AbstractEventLoop,
    model_path: str,
    settings: EngineSettings,
    verbose: bool,
    vision: VisionSettings | None = None,
) -> Any:
    """Load the model with a progress line; returns the service, or None after printing why not."""
    from rich.console import Console

    with _quiet_fds(verbose) as (terminal, log_path):
        from model_garden.inference import InferenceService

        service = InferenceService.from_settings(settings, vision=vision)
        console = Console(file=terminal, stderr=True)
        started = time.monotonic()
        task = loop.create_task(service.load_model(model_path))
        try:
            with console.status(f"Loading {model_path} …") as status:
                while not task.done():
                    loop.run_until_complete(asyncio.wait({task}, timeout=0.5))
                    status.update(f"Loading {model_path} … {time.monotonic() - started:.0f} s")
            task.result()
        except KeyboardInterrupt:
            task.cancel()
            console.print("[red]interrupted[/red]")
            return None
        except Exception as error:  # noqa: BLE001 - shown as one message, not a traceback
            tail = _log_tail(log_path)
            console.print(f"[red]error:[/red] could not load {model_path}: {error}")
            if tail:
                console.print(f"[dim]last lines of the engine log ({log_path}):\n{tail}[/dim]", markup=False)
            return None
        console.print(f"Loaded {model_path} in {time.monotonic() - started:.0f} s", style="dim")
    return service


def run_generate(
    model_path: str,
    settings: EngineSettings,
    prompt: str,
    images: Sequence[str],
    *,
    max_tokens: int,
    temperature: float,
    top_p: float,
    stream: bool,
    verbose: bool,
    vision: VisionSettings | None = None,
) -> int:
    from model_garden.image_refs import ImageRefError, image_ref_to_url
    from model_garden.inference import InferenceError

    vision = vision or VisionSettings()
    try:
        image_urls = [image_ref_to_url(ref, vision.max_image_bytes) for ref in images]
    except ImageRefError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    loop = asyncio.new_event_loop()
    service = load_in_process(loop, model_path, settings, verbose, vision)
    if service is None:
        return 1
    params = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p, "images": image_urls}

    async def complete() -> None:
        result = await service.generate(prompt, stream=stream, **params)
        if isinstance(result, dict):
            print(result["text"])
            return
        async for chunk in result:
            print(chunk["text"], end="", flush=True)
        print()

    try:
        loop.run_until_complete(complete())
    except InferenceError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    finally:
        loop.run_until_complete(service.unload_model())
        loop.close()
    return 0


def run_chat(
    model_path: str,
    settings: EngineSettings,
    system_prompt: str | None,
    images: Sequence[str],
    *,
    max_tokens: int,
    temperature: float,
    top_p: float,
    verbose: bool,
    vision: VisionSettings | None = None,
) -> int:
    from model_garden.chat_repl import ChatRepl
    from model_garden.image_refs import ImageRefError
    from model_garden.inference import InferenceError

    vision = vision or VisionSettings()
    loop = asyncio.new_event_loop()
    service = load_in_process(loop, model_path, settings, verbose, vision)
    if service is None:
        return 1
    params = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p}

    async def send(messages: list[dict[str, Any]]) -> AsyncIterator[str]:
        try:
            chunks = await service.chat_completion(messages, stream=True, **params)
            async for chunk in chunks:
                for choice in chunk.get("choices", ()):
                    if text := (choice.get("delta") or {}).get("content"):
                        yield text
        except InferenceError as error:
            raise RuntimeError(error.message) from None

    try:
        limit = vision.max_image_bytes
        repl = ChatRepl(send, loop=loop, system_prompt=system_prompt, images=images, max_image_bytes=limit)
        return repl.run()
    except ImageRefError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        loop.run_until_complete(service.unload_model())
        loop.close()
