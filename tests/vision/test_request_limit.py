"""--max-request-bytes on the real app (no model loaded): 413 with OpenAI's error body, whether the
body declares its length or streams in chunks, on every route."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from model_garden.api import create_app
from model_garden.inference import InferenceService
from model_garden_common.vision import VisionSettings

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def app() -> object:
    return create_app(InferenceService(vision=VisionSettings(max_request_bytes=LIMIT)))


async def post(
    app: object, content: bytes | AsyncIterator[bytes], path: str = "/v1/chat/completions"
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post(path, content=content, headers={"content-type": "application/json"})


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == 413 and "--max-request-bytes" in error["message"]


async def test_declared_length_over_the_limit(app: object) -> None:
    assert_too_large(await post(app, b"{" + b" " * LIMIT + b"}"))


async def test_streamed_body_over_the_limit(app: object) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b" " * (LIMIT // 4)

    assert_too_large(await post(app, chunks()))


async def test_every_route_is_limited(app: object) -> None:
    assert_too_large(await post(app, b" " * (LIMIT + 1), "/api/v1/inference/generate"))


async def test_bodies_within_the_limit_pass(app: object) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'

    # No model is loaded: the request got past the limit to the route.
    assert (await post(app, chunks())).status_code == 503
    assert (await post(app, b'{"model": "m", "messages": []}')).status_code == 503
