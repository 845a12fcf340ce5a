"""Load: 256 concurrent streaming requests on the tiny model. Zero errors, every stream ends with
`[DONE]`; throughput and latency percentiles are printed (`-s` shows them)."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

CONCURRENCY = 256
MAX_TOKENS = 32


async def _stream(client: httpx.AsyncClient, index: int) -> tuple[bool, float, float, int]:
    """(ended with [DONE], time to first event, total time, completion tokens)."""
    body = {
        "model": "demo",
        "messages": [{"role": "user", "content": f"Request {index}"}],
        "max_tokens": MAX_TOKENS,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    first = None
    buffer = b""
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            return False, 0.0, 0.0, 0
        async for piece in response.aiter_bytes():
            first = first or time.perf_counter() - started
            buffer += piece
    events = [event.removeprefix(b"data: ") for event in buffer.split(b"\n\n") if event.strip()]
    tokens = next((json.loads(e)["usage"]["completion_tokens"] for e in events[:-1] if b'"usage"' in e), 0)
    return events[-1] == b"[DONE]", first or 0.0, time.perf_counter() - started, tokens


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def test_256_concurrent_streams(runtime_server: Any) -> None:
    async def run() -> tuple[list[tuple[bool, float, float, int]], float]:
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        async with httpx.AsyncClient(base_url=runtime_server.url, limits=limits, timeout=300) as client:
            started = time.perf_counter()
            results = await asyncio.gather(*(_stream(client, i) for i in range(CONCURRENCY)))
            return results, time.perf_counter() - started

    results, wall = asyncio.run(run())
    ok = [r for r in results if r[0] and r[3] == MAX_TOKENS]
    firsts = [r[1] for r in ok]
    totals = [r[2] for r in ok]
    tokens = sum(r[3] for r in results)
    print(
        f"\n{CONCURRENCY} concurrent streams: {len(ok)} complete, {tokens / wall:.0f} completion tokens/s, "
        f"first event p50 {statistics.median(firsts):.2f} s p95 {_percentile(firsts, 0.95):.2f} s, "
        f"whole request p50 {statistics.median(totals):.2f} s p95 {_percentile(totals, 0.95):.2f} s "
        f"p99 {_percentile(totals, 0.99):.2f} s"
    )
    assert len(ok) == CONCURRENCY, "every stream answers 200 with all its tokens and ends with [DONE]"
    assert httpx.get(runtime_server.url + "/health").status_code == 200
