"""Request limits (each refusal a 400 naming its limit) and the per-request timeout (an abort)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engine.test_hardening import metric
from tests.support.runtime import ServerProcess, free_port, running_server, serve_model_argv
from tests.support.shapes import sse_data
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

CHAT = "/v1/chat/completions"
TIMEOUT = 0.3


def chat(**overrides: Any) -> dict[str, Any]:
    return {"model": "demo", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, **overrides}


@pytest.mark.parametrize(
    ("path", "body", "param", "needle"),
    [
        (CHAT, chat(n=9, temperature=1), "n", "limit of 8"),
        (CHAT, chat(best_of=20, temperature=1), "best_of", "limit of 8"),
        (CHAT, chat(stop="x" * 513), "stop", "limit of 512"),
        (
            CHAT,
            chat(messages=[{"role": "user", "content": "Hi", "name": "n" * 257}]),
            "messages[0].name",
            "256",
        ),
        ("/v1/completions", {"model": "demo", "prompt": "x", "n": 100, "temperature": 1}, "n", "limit of 8"),
        (
            "/api/v1/completions",
            {"model": "demo", "prompt": "x", "stop": ["a", "b" * 600]},
            "stop",
            "limit of 512",
        ),
    ],
)
def test_limits_refuse_with_a_400_naming_the_limit(
    runtime_server: Any, path: str, body: dict[str, Any], param: str, needle: str
) -> None:
    response = httpx.post(runtime_server.url + path, json=body, timeout=30)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and needle in error["message"]


def test_within_limits_is_served(runtime_server: Any) -> None:
    body = chat(
        n=8, temperature=1, stop=["a", "b"], messages=[{"role": "user", "content": "Hi", "name": "bob"}]
    )
    assert httpx.post(runtime_server.url + CHAT, json=body, timeout=60).status_code == 200


@pytest.fixture(scope="module")
def impatient_server(
    demo_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    port = free_port()
    argv = serve_model_argv(
        demo_model_dir, port, "--served-model-name", "demo", "--request-timeout", str(TIMEOUT)
    )
    with running_server(argv, port, tmp_path_factory.mktemp("impatient") / "server.log") as server:
        yield server


def _engine_idle(server: ServerProcess) -> bool:
    text = httpx.get(server.url + "/metrics").text
    return metric(text, "vllm:num_requests_running") == 0


def test_a_request_past_the_timeout_is_a_504_and_aborted(impatient_server: ServerProcess) -> None:
    response = httpx.post(impatient_server.url + CHAT, json=chat(max_tokens=230, ignore_eos=True), timeout=60)
    assert response.status_code == 504
    assert response.json()["error"]["type"] == "TimeoutError"
    wait_until(
        lambda: _engine_idle(impatient_server), timeout=2, interval=0.05, what="the engine request aborted"
    )


def test_a_stream_past_the_timeout_ends_with_an_error_event(impatient_server: ServerProcess) -> None:
    response = httpx.post(
        impatient_server.url + CHAT, json=chat(max_tokens=230, ignore_eos=True, stream=True), timeout=60
    )
    assert response.status_code == 200  # the stream had started
    payloads = sse_data(response.text)
    assert payloads[-1] == "[DONE]"
    assert json.loads(payloads[-2])["error"]["code"] == 504
    wait_until(
        lambda: _engine_idle(impatient_server), timeout=2, interval=0.05, what="the engine request aborted"
    )


def test_a_quick_request_is_untouched(impatient_server: ServerProcess) -> None:
    assert httpx.post(impatient_server.url + CHAT, json=chat(max_tokens=1), timeout=60).status_code == 200
