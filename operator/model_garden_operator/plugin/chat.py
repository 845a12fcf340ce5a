"""`kubectl mg chat` and `kubectl mg generate`: find the model's endpoint, then talk to it.

The terminal loop is the runtime's own `ChatRepl` (history, /clear /history /image /help, piped
stdin as one message, Ctrl+C stopping an answer); this module only gives it a `send` that streams
from the model through the API server's service proxy (or a --url).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console

from model_garden.chat_repl import ChatRepl
from model_garden.image_refs import ImageRefError, image_ref_to_url
from model_garden_common.constants import DEFAULT_MAX_IMAGE_BYTES
from model_garden_operator.plugin.api import KubeApi
from model_garden_operator.plugin.errors import PluginError
from model_garden_operator.plugin.models import (
    ModelState,
    max_image_bytes,
    served_model_name,
    wait_until_serving,
)
from model_garden_operator.plugin.proxy import ModelEndpoint
from model_garden_operator.plugin.render import progress_display


@dataclass(frozen=True)
class Reach:
    """How to reach a model: its name in the cluster, or a URL; and what to do if it is not Ready."""

    name: str | None
    url: str | None
    api_key: str | None
    wait: bool
    timeout: float


def find_endpoint(
    reach: Reach,
    api: Callable[[], KubeApi],
    console: Console,
    on_model: Callable[[Mapping[str, Any] | None], None] = lambda _: None,
) -> ModelEndpoint:
    """The model's endpoint; waits (or offers to) while the model is on its way to Ready.

    `on_model` sees the InferenceModel (None for a --url) as soon as it is read, before any wait, so
    that a mistake in the caller's own input is reported first.
    """
    if reach.url:
        on_model(None)
        return ModelEndpoint.direct(reach.url, reach.name or "", reach.api_key)
    if not reach.name:
        raise PluginError("give the InferenceModel's NAME (or --url to talk to an endpoint directly)", 2)
    kube = api()
    namespace = kube.conn.namespace
    obj = kube.get_model(namespace, reach.name)
    on_model(obj)
    state = ModelState.of(obj)
    if not state.probably_serving:
        if state.phase == "Failed":
            raise state.failure()
        if state.phase == "Stopped":
            raise state.not_ready("")
        if not reach.wait and not _offer_to_wait(state, console):
            raise state.not_ready(f"pass --wait to wait for it (kubectl mg status {reach.name})")
        with progress_display(console, reach.name) as progress:
            state = wait_until_serving(
                lambda: kube.get_model(namespace, reach.name or ""),
                timeout=reach.timeout,
                progress=progress,
                ready_only=False,
            )
        console.print(f"{reach.name} is {state.phase} ({state.ready} ready).", highlight=False)
        obj = kube.get_model(namespace, reach.name)
    return ModelEndpoint.through_proxy(
        kube.conn, namespace, reach.name, served_model_name(obj), reach.api_key
    )


def _offer_to_wait(state: ModelState, console: Console) -> bool:
    """Interactive: say why and ask y/N. Piped stdin: no (the caller says to pass --wait)."""
    if not sys.stdin.isatty():
        return False
    console.print(f"Model {state.name} is not Ready yet: {state.summary()}.", highlight=False)
    try:
        return click.confirm("Wait until it is Ready?", default=False, err=True)
    except click.Abort:
        return False


def image_urls(refs: Sequence[str], max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> list[str]:
    """Local files as data URLs (checked for existence, type and size), URLs unchanged."""
    try:
        return [image_ref_to_url(ref, max_bytes) for ref in refs]
    except ImageRefError as error:
        raise PluginError(str(error), exit_code=2) from None


def sampling(**values: Any) -> dict[str, Any]:
    """The sampling parameters given; the rest are the model's own defaults."""
    return {key: value for key, value in values.items() if value is not None}


def run_chat(
    reach: Reach,
    api: Callable[[], KubeApi],
    *,
    system_prompt: str | None,
    images: Sequence[str],
    params: Mapping[str, Any],
    console: Console,
) -> int:
    # Images are checked against the model's own limit (spec.vision.maxImageBytes) as soon as the
    # model is read, before any wait: a missing or too large file is the quickest mistake to report.
    limit = DEFAULT_MAX_IMAGE_BYTES
    urls: list[str] = []

    def check_images(obj: Mapping[str, Any] | None) -> None:
        nonlocal limit, urls
        limit = DEFAULT_MAX_IMAGE_BYTES if obj is None else max_image_bytes(obj)
        urls = image_urls(images, limit)

    endpoint = find_endpoint(reach, api, console, on_model=check_images)
    loop = asyncio.new_event_loop()
    failed: list[PluginError] = []

    async def send(messages: list[dict[str, Any]]) -> AsyncIterator[str]:
        try:
            async for piece in endpoint.chat_stream(messages, params):
                yield piece
        except PluginError as error:
            failed.append(error)
            raise

    try:
        if not endpoint.model:
            endpoint.model = loop.run_until_complete(endpoint.first_model())
        repl = ChatRepl(
            send,
            loop=loop,
            system_prompt=system_prompt,
            images=urls,
            max_image_bytes=limit,
        )
        code = repl.run()
        # Piped input: a failed request is a failure (1), not an interruption (130).
        return 1 if code == 130 and failed and not sys.stdin.isatty() else code
    finally:
        loop.run_until_complete(endpoint.aclose())
        loop.close()


def run_generate(
    reach: Reach,
    api: Callable[[], KubeApi],
    *,
    prompt: str,
    stream: bool,
    params: Mapping[str, Any],
    console: Console,
) -> int:
    endpoint = find_endpoint(reach, api, console)
    loop = asyncio.new_event_loop()

    async def generate() -> None:
        if not endpoint.model:
            endpoint.model = await endpoint.first_model()
        if not stream:
            click.echo(await endpoint.complete(prompt, params))
            return
        async for piece in endpoint.complete_stream(prompt, params):
            click.echo(piece, nl=False)
            sys.stdout.flush()
        click.echo()

    try:
        loop.run_until_complete(generate())
    finally:
        loop.run_until_complete(endpoint.aclose())
        loop.close()
    return 0
