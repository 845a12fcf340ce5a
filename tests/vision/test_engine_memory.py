"""Memory stays bounded: 20 concurrent requests, each carrying the largest image the default limits
allow (a 4096 x 4096 JPEG of noise just under --max-image-bytes, as a data URL).

The server's resident memory is sampled while they run. What one such request can hold in the API
process, at most: its body (14 MB of base64) and the parsed JSON string of it, our decoded bytes
(10 MB), one decoded raster at a time per decode slot (4 bytes x 16.7 M pixels = 64 MiB), and
inside vLLM its own decoded copy (bytes, and the RGB raster: 48 MiB) until the image processor has
resized it. The bound asserted below is that arithmetic for 20 requests:
20 x (14 + 14 + 10 + 10 + 48) MB + DECODE_SLOTS x 64 MiB + 25% allowance for allocator slack.
The figures are printed (`-s`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import psutil
import pytest

from model_garden.constants import DEFAULT_MAX_IMAGE_BYTES
from model_garden.vision.pipeline import DECODE_SLOTS
from model_garden.vision.settings import DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_MAX_REQUEST_BYTES
from tests.support.runtime import ServerProcess
from tests.vision.conftest import VISION_MODEL
from tests.vision.images import data_url, noisy_jpeg

pytestmark = pytest.mark.slow

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
