"""An image sent to a text-only model (the demo text model) on the real engine: a 400, not a 500 from
inside vLLM, and nothing fetched."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.image_server import ImageServer
from tests.vision.images import image_data_url

pytestmark = pytest.mark.slow

QUESTION = {"type": "text", "text": "What is in the picture?"}


def image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def test_image_to_a_text_only_model_is_a_400(runtime_server: Any) -> None:
    """The demo text model: refused before any fetch, not a 500 from inside vLLM."""
    with ImageServer() as recorder:
        for url in (image_data_url(), recorder.url("/image.png")):
            response = httpx.post(
                runtime_server.url + "/v1/chat/completions",
                json={"model": "demo", "messages": [{"role": "user", "content": [QUESTION, image(url)]}]},
                timeout=60,
            )
            assert response.status_code == 400, response.text
            assert "(model_has_no_vision)" in response.json()["error"]["message"]
        assert recorder.connections == []
    assert httpx.get(runtime_server.url + "/health").status_code == 200
