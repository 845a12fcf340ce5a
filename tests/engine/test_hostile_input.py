"""Hostile input against the running server: property-based from our OpenAPI schema (schemathesis)
plus a hand-written list. Every answer must be below 500 and the server healthy afterwards.

The counts are printed (`-s` shows them) and asserted: at least 200 requests in all.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

pytestmark = pytest.mark.slow

CHAT = "/v1/chat/completions"
STATUS_COUNTS: Counter[int] = Counter()


# Load and unload would swap the shared model out from under other tests.
EXCLUDED_PATHS = ("/api/v1/inference/load", "/api/v1/inference/unload")


def test_generated_requests_never_get_a_5xx(runtime_server: Any) -> None:
    schema = schemathesis.openapi.from_url(runtime_server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if op.path not in EXCLUDED_PATHS]
    failures: list[str] = []

    for operation, mode in itertools.product(operations, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case: Any) -> None:
            if isinstance(case.body, dict) and "max_tokens" in case.body:
                # Keep generations short: the point is input handling, not decoding speed.
                case.body["max_tokens"] = 8
            response = case.call(base_url=runtime_server.url, timeout=60)
            STATUS_COUNTS[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.path}: {response.status_code} {response.text[:300]}")

        # No invalid input exists for an operation without parameters (e.g. GET /livez).
        with contextlib.suppress(Unsatisfiable):
            exercise()
    assert failures == []


def _chat(**overrides: Any) -> dict[str, Any]:
    return {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **overrides}


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


HAND_WRITTEN: list[tuple[str, str, dict[str, str], bytes]] = [
    # (method, path, headers, body)
    *[
        ("POST", CHAT, {"content-type": "application/json"}, json.dumps(_chat(**{field: value})).encode())
        for field, value in [
            ("temperature", "hot"),
            ("temperature", 1e308),
            ("temperature", -1),
            ("max_tokens", 10**30),
            ("max_tokens", -5),
            ("max_tokens", 0),
            ("top_p", 2),
            ("n", 10**9),
            ("n", -1),
            ("best_of", 10**6),
            ("stop", ["x"] * 10_000),
            ("stop", "y" * 100_000),
            ("seed", 2**80),
            ("logprobs", "yes"),
            ("top_logprobs", 10**6),
            ("logit_bias", {"999999999": 100}),
            ("logit_bias", {"x": "y"}),
            ("presence_penalty", 1e9),
            ("frequency_penalty", float("inf")),
            ("messages", [{"role": "wizard"}]),
            ("messages", [{"role": "user", "content": None}]),
            ("messages", [{"content": "x"}]),
            ("messages", [{"role": "user", "content": [{"type": "video", "video": 1}]}]),
            ("messages", [{"role": "user", "content": "x", "name": "n" * 100_000}]),
            ("unknown_field", 1),
            ("model", ""),
            ("model", "x" * 10_000),
            ("stream", "maybe"),
            (
                "response_format",
                {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "bogus"}}},
            ),
            ("response_format", {"type": "nonsense"}),
            ("tools", "none"),
            ("tool_choice", {"bad": 1}),
            ("stream_options", {"include_usage": "sure"}),
            ("max_completion_tokens", 10**12),
        ]
    ],
    (
        "POST",
        CHAT,
        {"content-type": "application/json"},
        b'{"model": "demo", "temperature": NaN, "messages": []}',
    ),
    ("POST", CHAT, {"content-type": "application/json"}, b'{"model": "demo", "max_tokens": Infinity}'),
    (
        "POST",
        CHAT,
        {"content-type": "application/json"},
        b'{"model": "\xff\xfe", "messages": [{"role": "user"}]}',
    ),
    ("POST", CHAT, {"content-type": "application/json"}, b"\xc3\x28\xa0\xa1"),
    ("POST", CHAT, {"content-type": "application/json"}, _deep(100_000).encode()),
    (
        "POST",
        CHAT,
        {"content-type": "application/json"},
        b'{"model": "demo", "messages": ' + _deep(5_000).encode() + b"}",
    ),
    ("POST", CHAT, {"content-type": "application/json"}, b""),
    ("POST", CHAT, {"content-type": "application/json"}, b"null"),
    ("POST", CHAT, {"content-type": "application/json"}, b'{"a": ' + b'"' + b"x" * (10 * 2**20) + b'"}'),
    ("POST", CHAT, {"content-type": "text/plain"}, json.dumps(_chat()).encode()),
    ("POST", CHAT, {"content-type": "multipart/form-data; boundary=x"}, b"--x\r\n\r\n--x--"),
    ("POST", CHAT, {}, json.dumps(_chat()).encode()),
    (
        "POST",
        "/v1/completions",
        {"content-type": "application/json"},
        b'{"model": "demo", "prompt": [[-1, 10000000]]}',
    ),
    ("POST", "/v1/completions", {"content-type": "application/json"}, b'{"model": "demo", "prompt": ""}'),
    (
        "POST",
        "/v1/completions",
        {"content-type": "application/json"},
        b'{"model": "demo", "prompt": {"a": 1}}',
    ),
    ("POST", "/api/v1/inference/generate", {"content-type": "application/json"}, b'{"prompt": 5}'),
    (
        "POST",
        "/api/v1/inference/generate",
        {"content-type": "application/json"},
        b'{"prompt": "x", "images": "no"}',
    ),
    ("POST", "/api/v1/inference/load", {"content-type": "application/json"}, b'{"model_path": 3}'),
    ("GET", "/v1/chat/completions", {}, b""),
    ("DELETE", "/v1/models", {}, b""),
    ("PATCH", "/health", {}, b""),
    ("GET", "/no/such/route", {}, b""),
    ("GET", "/../../etc/passwd", {}, b""),
    ("GET", "/v1/models", {"x-huge": "h" * (64 * 1024)}, b""),
    ("OPTIONS", CHAT, {}, b""),
    ("TRACE", "/", {}, b""),
]


@pytest.mark.parametrize(("method", "path", "headers", "body"), HAND_WRITTEN)
def test_hand_written_hostile_requests(
    runtime_server: Any, method: str, path: str, headers: dict[str, str], body: bytes
) -> None:
    try:
        response = httpx.request(method, runtime_server.url + path, headers=headers, content=body, timeout=60)
    except httpx.RemoteProtocolError:
        STATUS_COUNTS[0] += 1  # the server closed the connection (e.g. oversized headers): not a 5xx
        return
    STATUS_COUNTS[response.status_code] += 1
    assert response.status_code < 500, response.text[:500]


def test_client_that_stops_mid_body(runtime_server: Any) -> None:
    host, port = runtime_server.url.removeprefix("http://").split(":")
    for _ in range(5):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 1000\r\n\r\n{"model": "de'
            )
        STATUS_COUNTS[0] += 1
    assert httpx.get(runtime_server.url + "/health", timeout=10).status_code == 200


def test_counts_and_health_after(runtime_server: Any) -> None:
    """Last in this module: the totals, and the server still serving."""
    total = sum(STATUS_COUNTS.values())
    print(f"\nhostile-input requests: {total}; by status: {dict(sorted(STATUS_COUNTS.items()))}")
    assert total >= 200
    assert not [status for status in STATUS_COUNTS if status >= 500]
    assert httpx.get(runtime_server.url + "/health", timeout=10).status_code == 200
    reply = httpx.post(runtime_server.url + CHAT, json=_chat(), timeout=60)
    assert reply.status_code == 200
