"""Images through the real server on the real vLLM CPU engine (the tiny Idefics3): every source,
several images, streaming, the `openai` client on both base URLs, the generate route, usage,
metrics, the loopback part of the hostile inputs (the rest runs in a network namespace:
test_hostile_netns.py), and the memory bound under 20 concurrent largest images."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import psutil
import pytest

from model_garden.demo_vision_model import PROMPT_TOKENS_PER_IMAGE
from model_garden.vision.pipeline import DECODE_SLOTS
from model_garden_common.constants import DEFAULT_MAX_IMAGE_BYTES
from model_garden_common.vision import DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_MAX_REQUEST_BYTES
from tests.support.image_server import ImageServer
from tests.support.runtime import ServerProcess
from tests.vision.conftest import VISION_MODEL
from tests.vision.images import data_url, image_data_url, noisy_jpeg, png_declaring

pytestmark = pytest.mark.slow

BASE_PATHS = ("/v1", "/api/v1")
QUESTION = {"type": "text", "text": "What is in the picture?"}


def image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


@pytest.fixture(scope="module", params=BASE_PATHS)
def client(request: pytest.FixtureRequest, vision_server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=vision_server.url + request.param, api_key="unused", max_retries=0)


def ask(client: openai.OpenAI, *messages: list[dict[str, Any]]) -> Any:
    return client.chat.completions.create(
        model=VISION_MODEL,
        messages=[{"role": "user", "content": content} for content in messages],  # type: ignore[misc]
        max_tokens=4,
        temperature=0,
    )


def sources(server: ImageServer, dirs: dict[str, Path]) -> dict[str, str]:
    return {
        "data": image_data_url(90, 70, "JPEG", seed=1),
        "http": server.url("/image.png"),
        "file": f"file://{dirs['allowed']}/cat.png",
    }


def test_one_image_from_each_source(
    client: openai.OpenAI, allowed_image_server: ImageServer, image_dirs: dict[str, Path]
) -> None:
    text_only = ask(client, [QUESTION]).usage.prompt_tokens
    for name, url in sources(allowed_image_server, image_dirs).items():
        reply = ask(client, [QUESTION, image(url)])
        assert reply.object == "chat.completion" and reply.choices[0].finish_reason == "length", name
        assert reply.usage.prompt_tokens == text_only + PROMPT_TOKENS_PER_IMAGE, name


def test_usage_counts_every_image_across_messages(
    client: openai.OpenAI, allowed_image_server: ImageServer, image_dirs: dict[str, Path]
) -> None:
    urls = list(sources(allowed_image_server, image_dirs).values())
    base = ask(client, [QUESTION], [QUESTION]).usage.prompt_tokens
    for count in range(1, 5):
        chosen = [urls[i % len(urls)] for i in range(count)]
        first, second = chosen[: count // 2], chosen[count // 2 :]
        reply = ask(client, [QUESTION, *map(image, first)], [QUESTION, *map(image, second)])
        assert reply.usage.prompt_tokens == base + count * PROMPT_TOKENS_PER_IMAGE


def test_streaming_with_images(
    client: openai.OpenAI, allowed_image_server: ImageServer, image_dirs: dict[str, Path]
) -> None:
    urls = sources(allowed_image_server, image_dirs)
    text_only = ask(client, [QUESTION]).usage.prompt_tokens
    stream = client.chat.completions.create(
        model=VISION_MODEL,
        messages=[{"role": "user", "content": [QUESTION, image(urls["http"]), image(urls["data"])]}],
        max_tokens=5,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "length"
    ]
    usage = chunks[-1].usage
    assert usage.completion_tokens == 5
    assert usage.prompt_tokens == text_only + 2 * PROMPT_TOKENS_PER_IMAGE


def test_generate_route_with_images(
    vision_server: ServerProcess, allowed_image_server: ImageServer, image_dirs: dict[str, Path]
) -> None:
    urls = list(sources(allowed_image_server, image_dirs).values())
    route = vision_server.url + "/api/v1/inference/generate"
    plain = httpx.post(route, json={"prompt": "Describe", "images": urls[:1], "max_tokens": 3}, timeout=60)
    assert plain.status_code == 200, plain.text
    body = httpx.post(route, json={"prompt": "Describe", "images": urls, "max_tokens": 3}, timeout=60).json()
    assert set(body) == {"text", "finish_reason", "usage"}
    assert (
        body["usage"]["prompt_tokens"] == plain.json()["usage"]["prompt_tokens"] + 2 * PROMPT_TOKENS_PER_IMAGE
    )
    with httpx.stream(
        "POST",
        route,
        json={"prompt": "Describe", "images": urls, "max_tokens": 3, "stream": True},
        timeout=60,
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    events = [json.loads(line.removeprefix("data: ")) for line in lines]
    assert all(set(event) == {"text", "finish_reason"} for event in events)
    assert events[-1]["finish_reason"] == "length" and "[DONE]" not in lines[-1]
    refused = httpx.post(route, json={"prompt": "x", "images": ["http://169.254.169.254/"]}, timeout=60)
    assert refused.status_code == 400 and "address_not_allowed" in refused.json()["error"]["message"]


def metrics(server: ServerProcess) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in httpx.get(server.url + "/metrics").text.splitlines():
        if line.startswith("model_garden_image"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_metrics_count_images_bytes_and_refusals(
    vision_server: ServerProcess, allowed_image_server: ImageServer
) -> None:
    client = openai.OpenAI(base_url=vision_server.url + "/v1", api_key="unused", max_retries=0)
    before = metrics(vision_server)
    ask(client, [QUESTION, image(allowed_image_server.url("/image.png"))])
    with pytest.raises(openai.BadRequestError):
        ask(client, [QUESTION, image("http://127.0.0.1:9/x.png")])
    after = metrics(vision_server)
    accepted = 'model_garden_images_accepted_total{source="http"}'
    assert after[accepted] == before[accepted] + 1
    size = 'model_garden_image_bytes_total{source="http"}'
    assert after[size] == before[size] + len(allowed_image_server.png)
    refusals = 'model_garden_image_refusals_total{reason="address_not_allowed"}'
    assert after[refusals] == before[refusals] + 1


# --- Hostile inputs that stay on this machine (loopback and files) ----------------------------------
def hostile_cases(recorder: ImageServer, dirs: dict[str, Path]) -> dict[str, tuple[list[Any], str]]:
    port = recorder.port
    loopback = {
        f"loopback {spelling}": (
            [QUESTION, image(f"http://{spelling}:{port}/image.png")],
            "address_not_allowed",
        )
        for spelling in (
            "127.0.0.1",
            "2130706433",
            "0x7f000001",
            "0177.0.0.1",
            "127.1",
            "0.0.0.0",
            "0",
            "localhost",
        )
    }
    many = [image(image_data_url()) for _ in range(9)]
    return {
        **loopback,
        "[::1]": ([QUESTION, image(f"http://[::1]:{port}/image.png")], "address_not_allowed"),
        "IPv4-mapped": ([QUESTION, image(f"http://[::ffff:127.0.0.1]:{port}/")], "address_not_allowed"),
        "userinfo": ([image(f"http://{recorder.host}:{port}@127.0.0.1:{port}/image.png")], "unsupported_url"),
        "file outside": ([image(f"file://{dirs['outside']}/secret.png")], "path_not_allowed"),
        "file ..": ([image(f"file://{dirs['allowed']}/../outside/secret.png")], "path_not_allowed"),
        "file symlink out": ([image(f"file://{dirs['allowed']}/escape.png")], "path_not_allowed"),
        "file:///etc/passwd": ([image("file:///etc/passwd")], "path_not_allowed"),
        "oversized data URL": ([image("data:image/png;base64," + "A" * 14_000_000)], "image_too_large"),
        "not an image": ([image(data_url(b"<html>hello</html>" * 10))], "not_an_image"),
        "broken base64": ([image("data:image/png;base64,iVBORw0KGgo$$$")], "invalid_data_url"),
        "decompression bomb": ([image(data_url(png_declaring(20000, 20000)))], "too_many_pixels"),
        "too many images": ([QUESTION, *many], "too_many_images"),
        "gopher": ([image(f"gopher://127.0.0.1:{port}/_")], "unsupported_url"),
    }


def test_hostile_inputs_on_loopback_are_4xx_and_nothing_else(
    vision_server: ServerProcess, image_dirs: dict[str, Path]
) -> None:
    with ImageServer() as recorder:  # not allow-listed: no request may reach it
        for name, (content, reason) in hostile_cases(recorder, image_dirs).items():
            response = httpx.post(
                vision_server.url + "/v1/chat/completions",
                json={
                    "model": VISION_MODEL,
                    "messages": [{"role": "user", "content": content}],
                    "max_tokens": 2,
                },
                timeout=60,
            )
            assert response.status_code == 400, (name, response.text[:300])
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"} and error["code"] == 400
            assert f"({reason})" in error["message"], (name, error["message"])
        assert recorder.connections == []
    assert httpx.get(vision_server.url + "/health").status_code == 200
    assert vision_server.process.poll() is None


def test_request_body_limit(vision_server: ServerProcess) -> None:
    body = b'{"model": "vision", "messages": [], "pad": "' + b"x" * (33 * 1024 * 1024) + b'"}'
    response = httpx.post(
        vision_server.url + "/v1/chat/completions",
        content=body,
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 413
    assert "--max-request-bytes" in response.json()["error"]["message"]
    assert httpx.get(vision_server.url + "/health").status_code == 200


# --- Memory stays bounded ------------------------------------------------------------------------
# Memory stays bounded: 20 concurrent requests, each carrying the largest image the default limits
# allow (a 4096 x 4096 JPEG of noise just under --max-image-bytes, as a data URL).
#
# The server's resident memory is sampled while they run. What one such request can hold in the API
# process, at most: its body (14 MB of base64) and the parsed JSON string of it, our decoded bytes
# (10 MB), one decoded raster at a time per decode slot (4 bytes x 16.7 M pixels = 64 MiB), and
# inside vLLM its own decoded copy (bytes, and the RGB raster: 48 MiB) until the image processor has
# resized it. The bound asserted below is that arithmetic for 20 requests:
# 20 x (14 + 14 + 10 + 10 + 48) MB + DECODE_SLOTS x 64 MiB + 25% allowance for allocator slack.
# The figures are printed (`-s`).
CONCURRENCY = 20
MB = 1_000_000
MIB = 1024 * 1024
PER_REQUEST = (14 + 14 + 10 + 10 + 48) * MB
BOUND = int((CONCURRENCY * PER_REQUEST + DECODE_SLOTS * 4 * DEFAULT_MAX_IMAGE_PIXELS) * 1.25)


class RssSampler:
    """Samples the resident memory of a process (and, apart, of its children) every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.peak_children = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> tuple[int, int]:
        children = sum(child.memory_info().rss for child in self.process.children(recursive=True))
        return self.process.memory_info().rss, children

    def _run(self) -> None:
        while not self._stop.is_set():
            own, children = self.rss()
            self.peak = max(self.peak, own)
            self.peak_children = max(self.peak_children, children)
            time.sleep(0.02)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def test_twenty_concurrent_largest_images(vision_server: ServerProcess) -> None:
    jpeg = noisy_jpeg(4096, 4096, DEFAULT_MAX_IMAGE_BYTES)
    assert DEFAULT_MAX_IMAGE_BYTES - 300_000 < len(jpeg) <= DEFAULT_MAX_IMAGE_BYTES
    url = data_url(jpeg, "image/jpeg")
    body = {
        "model": VISION_MODEL,
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}],
        "max_tokens": 2,
    }
    assert len(url) + 200 < DEFAULT_MAX_REQUEST_BYTES

    async def send_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=CONCURRENCY)
        async with httpx.AsyncClient(base_url=vision_server.url, limits=limits, timeout=600) as client:
            return await asyncio.gather(
                *(client.post("/v1/chat/completions", json=body) for _ in range(CONCURRENCY))
            )

    sampler = RssSampler(vision_server.process.pid)
    baseline, baseline_children = sampler.rss()
    started = time.monotonic()
    with sampler:
        responses = asyncio.run(send_all())
    elapsed = time.monotonic() - started
    assert [r.status_code for r in responses] == [200] * CONCURRENCY, responses[0].text[:500]
    growth = sampler.peak - baseline
    print(
        f"\n{CONCURRENCY} concurrent requests with a {len(jpeg) / MIB:.2f} MiB 4096x4096 JPEG each, "
        f"in {elapsed:.1f} s: API process RSS {baseline / MIB:.0f} MiB -> peak {sampler.peak / MIB:.0f} MiB "
        f"(+{growth / MIB:.0f} MiB; bound +{BOUND / MIB:.0f} MiB); engine-core process(es) "
        f"{baseline_children / MIB:.0f} -> peak {sampler.peak_children / MIB:.0f} MiB"
    )
    assert growth < BOUND
    assert httpx.get(vision_server.url + "/health").status_code == 200
