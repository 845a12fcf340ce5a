"""A stand-in for the runtime's OpenAI routes, in the tests' event loop: answers in the wire shape
of vLLM's server (chunks, `[DONE]`, error bodies) with known text, quickly, and records requests.

The engine tier covers the real runtime; this one lets the plugin's own behaviour (streaming,
history, images, interruption, errors) be tested in a second, on any machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web
from aiohttp.test_utils import TestServer

SERVED_NAME = "demo"
WORDS = [
    "Once",
    "upon",
    "a",
    "time",
    "a",
    "tiny",
    "model",
    "answered",
    "every",
    "question",
    "with",
    "a",
    "story",
]


def answer_pieces(turn: int, images: int) -> list[str]:
    """The answer to the `turn`-th request, as streamed pieces."""
    lead = f"[turn {turn}{f', {images} image(s)' if images else ''}]"
    return [lead] + [f" {word}" for word in WORDS]


@dataclass
class FakeModel:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    delay: float = 0.0  # between streamed pieces

    def _error(self, status: int, kind: str, message: str, param: str | None = None) -> aiohttp.web.Response:
        body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
        return aiohttp.web.json_response(body, status=status)

    async def _record(self, request: aiohttp.web.Request) -> dict[str, Any] | aiohttp.web.Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if body.get("model") != SERVED_NAME:
            return self._error(
                404, "NotFoundError", f"The model `{body.get('model')}` does not exist.", "model"
            )
        return body  # type: ignore[no-any-return]

    async def chat(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        body = await self._record(request)
        if isinstance(body, aiohttp.web.Response):
            return body
        last = body["messages"][-1]["content"]
        images = sum(1 for part in last if part.get("type") == "image_url") if isinstance(last, list) else 0
        pieces = answer_pieces(len(self.requests), images)
        created = int(time.time())
        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": created,
            "model": SERVED_NAME,
        }
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(pieces)}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return aiohttp.web.json_response({**base, "object": "chat.completion", "choices": [choice]})
        events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
        events += [{**base, "choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
        events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        return await self._sse(request, events)

    async def completions(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        body = await self._record(request)
        if isinstance(body, aiohttp.web.Response):
            return body
        pieces = [f"{body['prompt']} →"] + [f" {word}" for word in WORDS]
        base = {
            "id": "cmpl-fake",
            "object": "text_completion",
            "created": int(time.time()),
            "model": SERVED_NAME,
        }
        if not body.get("stream"):
            choice = {"index": 0, "text": "".join(pieces), "finish_reason": "length"}
            return aiohttp.web.json_response({**base, "choices": [choice]})
        events = [{**base, "choices": [{"index": 0, "text": p, "finish_reason": None}]} for p in pieces]
        return await self._sse(request, events)

    async def _sse(
        self, request: aiohttp.web.Request, events: list[dict[str, Any]]
    ) -> aiohttp.web.StreamResponse:
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            for event in events:
                await response.write(f"data: {json.dumps(event)}\n\n".encode())
                if self.delay:
                    await asyncio.sleep(self.delay)
            await response.write(b"data: [DONE]\n\n")
        return response

    async def models(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.json_response({"object": "list", "data": [{"id": SERVED_NAME, "object": "model"}]})


@contextlib.asynccontextmanager
async def running_fake_model() -> AsyncIterator[FakeModel]:
    fake = FakeModel()
    app = aiohttp.web.Application()
    for prefix in ("/v1", "/api/v1"):
        app.router.add_post(f"{prefix}/chat/completions", fake.chat)
        app.router.add_post(f"{prefix}/completions", fake.completions)
        app.router.add_get(f"{prefix}/models", fake.models)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    try:
        yield fake
    finally:
        await server.close()
