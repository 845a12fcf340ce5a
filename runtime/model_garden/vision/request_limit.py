"""A request body size limit (--max-request-bytes), as a pure ASGI middleware.

A declared Content-Length over the limit is answered 413 before any of the body is read (the
server's HTTP parser holds the client to its Content-Length). A body without one (chunked) is
counted as it arrives and refused as soon as it passes the limit. The answer is OpenAI's error
body, as vLLM's handlers would write it for a 413.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from fastapi import HTTPException

from model_garden.vision import metrics
from model_garden_common.image_errors import REQUEST_TOO_LARGE

ASGIApp = Any
STATUS = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


def too_large_message(size: str, max_bytes: int) -> str:
    return f"request body is {size} bytes; --max-request-bytes allows {max_bytes:,}"


class RequestSizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None:
            if length > self.max_bytes:
                metrics.refused(REQUEST_TOO_LARGE)
                await _send_error(send, too_large_message(f"{length:,}", self.max_bytes))
                return
            await self.app(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Any) -> Any:
        received = 0
        max_bytes = self.max_bytes

        async def counted() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    metrics.refused(REQUEST_TOO_LARGE)
                    # Raised inside the route that reads the body: FastAPI passes HTTPException
                    # through, and the app's handler writes the OpenAI error body.
                    raise HTTPException(STATUS, too_large_message(f"over {max_bytes:,}", max_bytes))
            return message

        return counted


def _content_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _send_error(send: Any, message: str) -> None:
    body = json.dumps(
        {"error": {"message": message, "type": STATUS.phrase, "param": None, "code": STATUS.value}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": STATUS.value,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
