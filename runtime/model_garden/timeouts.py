"""A per-request timeout for the generation routes, that aborts the engine request when it fires.

When the deadline passes, the request's `receive` answers `http.disconnect`: vLLM's handlers
already treat a disconnect as "stop": its cancellation wrapper cancels a non-streaming handler and
the streaming response stops its generator, and either way vLLM aborts the engine request. This
middleware then answers in the client's stead: a 504 with OpenAI's error body if nothing was sent
yet, or, for a stream already under way, one error event and `data: [DONE]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable
from typing import Any

Message = dict[str, Any]


def _error(timeout: float) -> dict[str, Any]:
    return {
        "error": {
            "message": f"the request ran past the per-request timeout of {timeout:g} s and was aborted",
            "type": "TimeoutError",
            "param": None,
            "code": 504,
        }
    }


class RequestTimeoutMiddleware:
    def __init__(self, app: Any, timeout: float, paths: Iterable[str]) -> None:
        self.app = app
        self.timeout = timeout
        self.paths = frozenset(paths)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        expired = asyncio.Event()
        timer = asyncio.get_running_loop().call_later(self.timeout, expired.set)
        started = finished = False

        async def receive_until_deadline() -> Message:
            if expired.is_set():
                return {"type": "http.disconnect"}
            message_task = asyncio.ensure_future(receive())
            deadline_task = asyncio.ensure_future(expired.wait())
            done, _ = await asyncio.wait({message_task, deadline_task}, return_when=asyncio.FIRST_COMPLETED)
            if message_task in done:
                deadline_task.cancel()
                return message_task.result()
            message_task.cancel()
            return {"type": "http.disconnect"}

        async def send_until_deadline(message: Message) -> None:
            nonlocal started, finished
            if expired.is_set():
                return  # the answer is ours now (below)
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        try:
            await self.app(scope, receive_until_deadline, send_until_deadline)
        finally:
            timer.cancel()
        if not expired.is_set() or finished:
            return
        body = _error(self.timeout)
        with contextlib.suppress(OSError):
            if not started:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 504,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": json.dumps(body).encode()})
            else:
                event = f"data: {json.dumps(body)}\n\ndata: [DONE]\n\n".encode()
                await send({"type": "http.response.body", "body": event, "more_body": False})
