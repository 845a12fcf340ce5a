"""Parity with vLLM's own OpenAI server: the same requests to both, answers compared in shape.

Both servers run the same tiny model with the same engine flags and served name. Greedy (temperature
0) answers must match token for token; everything else must match in keys, types, `object`,
`finish_reason`, `usage`, id prefixes, streaming chunk structure, `[DONE]`, and error status and body.

Deliberate differences (docs/parity.md says why), each asserted below rather than skipped:
- GET /health answers a JSON body (`{"status": "ready", ...}`) where vLLM answers an empty one.
- Every route is also served under /api/v1, and /livez exists; vLLM has neither.
- Request limits: `n` (and `best_of`) over 8 is a 400 here; vLLM runs it.
- HTTP metrics: `model_garden_*` here, `http_*` (prometheus-fastapi-instrumentator) there.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.runtime import TEST_ENGINE_ARGS, ServerProcess, free_port, running_server
from tests.support.shapes import differences, shape

pytestmark = pytest.mark.slow

MODEL = "demo"
CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


@pytest.fixture(scope="module")
def vllm_server(demo_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(demo_model_dir),
        "--served-model-name",
        MODEL,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *TEST_ENGINE_ARGS,
    ]
    with running_server(argv, port, tmp_path_factory.mktemp("vllm") / "vllm.log") as server:
        yield server


@pytest.fixture(scope="module")
def servers(runtime_server: ServerProcess, vllm_server: ServerProcess) -> tuple[ServerProcess, ServerProcess]:
    return runtime_server, vllm_server


def both(
    servers: tuple[ServerProcess, ServerProcess],
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    method: str = "POST",
) -> tuple[httpx.Response, httpx.Response]:
    def send(server: ServerProcess) -> httpx.Response:
        if raw is not None:
            return httpx.request(
                method,
                server.url + path,
                content=raw,
                headers={"content-type": "application/json"},
                timeout=60,
            )
        return httpx.request(method, server.url + path, json=body, timeout=60)

    return send(servers[0]), send(servers[1])


def assert_same_shape(ours: Any, theirs: Any) -> None:
    assert differences(shape(ours), shape(theirs)) == []


def chat(**overrides: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hello there"}],
        "max_tokens": 8,
        **overrides,
    }


def finishes(events: list[Any]) -> dict[int, str]:
    """Each choice's finish_reason, from a stream's chunks."""
    return {
        c["index"]: c["finish_reason"] for e in events[:-1] for c in e["choices"] if c.get("finish_reason")
    }


def sse_events(response: httpx.Response) -> list[Any]:
    lines = [line for line in response.text.split("\n") if line]
    assert all(line.startswith("data: ") for line in lines), lines
    return [line.removeprefix("data: ") if line == "data: [DONE]" else json.loads(line[6:]) for line in lines]


@pytest.mark.parametrize(
    "body",
    [
        chat(temperature=0),
        chat(temperature=0.8, seed=7, n=2),
        chat(temperature=0.9, seed=1234),
        chat(temperature=0, stop=["a", "e"]),
        chat(temperature=0, logprobs=True, top_logprobs=2),
        chat(temperature=0, max_completion_tokens=5),
        chat(
            messages=[{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}],
            temperature=0,
        ),
    ],
    ids=["greedy", "n=2", "seed", "stop", "logprobs", "max_completion_tokens", "system"],
)
def test_chat_completion_matches(servers: tuple[ServerProcess, ServerProcess], body: dict[str, Any]) -> None:
    ours, theirs = both(servers, CHAT, body)
    assert ours.status_code == theirs.status_code == 200
    a, b = ours.json(), theirs.json()
    assert_same_shape(a, b)
    assert a["object"] == b["object"] == "chat.completion"
    assert a["id"].split("-")[0] == b["id"].split("-")[0] == "chatcmpl"
    assert a["usage"] == b["usage"]
    assert [c["finish_reason"] for c in a["choices"]] == [c["finish_reason"] for c in b["choices"]]
    if body.get("temperature") == 0 or "seed" in body:
        # Same weights, same sampling, same seed: the same tokens.
        assert [c["message"]["content"] for c in a["choices"]] == [
            c["message"]["content"] for c in b["choices"]
        ]


@pytest.mark.parametrize(
    "body",
    [
        {"model": MODEL, "prompt": "Once upon a time", "max_tokens": 6, "temperature": 0},
        {"model": MODEL, "prompt": ["One", "Two"], "max_tokens": 4, "temperature": 0},
        {"model": MODEL, "prompt": "Numbers", "max_tokens": 4, "temperature": 0, "logprobs": 2, "echo": True},
    ],
    ids=["single", "batch", "logprobs-echo"],
)
def test_completion_matches(servers: tuple[ServerProcess, ServerProcess], body: dict[str, Any]) -> None:
    ours, theirs = both(servers, COMPLETIONS, body)
    assert ours.status_code == theirs.status_code == 200
    a, b = ours.json(), theirs.json()
    assert_same_shape(a, b)
    assert a["usage"] == b["usage"]
    assert [c["text"] for c in a["choices"]] == [c["text"] for c in b["choices"]]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CHAT, chat(temperature=0, stream=True)),
        (CHAT, chat(temperature=0, stream=True, stream_options={"include_usage": True})),
        (CHAT, chat(temperature=0.8, seed=7, stream=True, n=2)),
        (COMPLETIONS, {"model": MODEL, "prompt": "Once", "max_tokens": 5, "temperature": 0, "stream": True}),
    ],
    ids=["chat", "chat-usage", "chat-n2", "completion"],
)
def test_streams_match(servers: tuple[ServerProcess, ServerProcess], path: str, body: dict[str, Any]) -> None:
    ours, theirs = both(servers, path, body)
    assert ours.status_code == theirs.status_code == 200
    assert ours.headers["content-type"] == theirs.headers["content-type"]
    a, b = sse_events(ours), sse_events(theirs)
    assert a[-1] == b[-1] == "[DONE]"
    # With n > 1 the choices' chunks interleave differently from run to run: compare the kinds of
    # chunk (their shapes) and how each choice ends, not their order.
    assert {json.dumps(shape(e)) for e in a[:-1]} == {json.dumps(shape(e)) for e in b[:-1]}
    assert finishes(a) == finishes(b)
    assert len({event["id"] for event in a[:-1]}) == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CHAT, chat(temperature="hot")),
        (CHAT, chat(max_tokens="many")),
        (CHAT, chat(messages="hello")),
        (CHAT, chat(temperature=-1)),
        (CHAT, chat(top_p=0)),
        (CHAT, chat(n=0)),
        (CHAT, chat(max_tokens=100_000)),
        (CHAT, chat(messages=[])),
        (CHAT, chat(model="no-such-model")),
        (CHAT, chat(messages=[{"role": "user", "content": "word " * 400}])),
        (CHAT, chat(logprobs=True, top_logprobs=100)),
        (COMPLETIONS, {"model": MODEL, "prompt": "x", "max_tokens": -1}),
        (COMPLETIONS, {"model": MODEL}),
        (COMPLETIONS, {"model": MODEL, "prompt": "word " * 400}),
    ],
    ids=[
        "temperature-type",
        "max-tokens-type",
        "messages-type",
        "negative-temperature",
        "top-p-zero",
        "n-zero",
        "max-tokens-over-context",
        "empty-messages",
        "unknown-model",
        "context-overflow",
        "too-many-logprobs",
        "negative-max-tokens",
        "no-prompt",
        "completion-context-overflow",
    ],
)
def test_errors_match(servers: tuple[ServerProcess, ServerProcess], path: str, body: dict[str, Any]) -> None:
    ours, theirs = both(servers, path, body)
    assert ours.status_code == theirs.status_code
    assert 400 <= ours.status_code < 500
    assert ours.json() == theirs.json()


@pytest.mark.parametrize(
    "raw", [b"{not json", b"", b"[]", b'"text"'], ids=["broken", "empty", "array", "string"]
)
def test_malformed_json_matches(servers: tuple[ServerProcess, ServerProcess], raw: bytes) -> None:
    ours, theirs = both(servers, CHAT, raw=raw)
    assert ours.status_code == theirs.status_code == 400
    assert ours.json() == theirs.json()


def test_wrong_content_type_matches(servers: tuple[ServerProcess, ServerProcess]) -> None:
    responses = [
        httpx.post(s.url + CHAT, content=b"hello", headers={"content-type": "text/plain"}, timeout=30)
        for s in servers
    ]
    assert responses[0].status_code == responses[1].status_code
    assert responses[0].json() == responses[1].json()


def test_models_match(servers: tuple[ServerProcess, ServerProcess]) -> None:
    ours, theirs = both(servers, "/v1/models", method="GET")
    a, b = ours.json(), theirs.json()
    assert_same_shape(a, b)
    for model in (*a["data"], *b["data"]):  # paths and creation times differ by nature
        (
            model.pop("created"),
            model.pop("root"),
            model["permission"][0].pop("id"),
            model["permission"][0].pop("created"),
        )
    assert a == b


def test_deliberate_differences(servers: tuple[ServerProcess, ServerProcess]) -> None:
    ours, theirs = servers
    assert httpx.get(theirs.url + "/health").content == b""
    assert httpx.get(ours.url + "/health").json()["status"] == "ready"
    assert httpx.get(ours.url + "/livez").status_code == 200
    assert httpx.get(theirs.url + "/livez").status_code == 404
    assert httpx.get(ours.url + "/api/v1/models").status_code == 200
    assert httpx.get(theirs.url + "/api/v1/models").status_code == 404


def test_missing_model_field_means_the_served_model(servers: tuple[ServerProcess, ServerProcess]) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "temperature": 0}
    ours, theirs = both(servers, CHAT, body)
    assert ours.status_code == theirs.status_code == 200
    assert_same_shape(ours.json(), theirs.json())


def test_deliberate_difference_request_limits(servers: tuple[ServerProcess, ServerProcess]) -> None:
    """We cap `n` (vLLM stalls for seconds when a client cancels a huge `n`); vLLM does not."""
    ours, theirs = both(servers, CHAT, chat(n=9, temperature=1, max_tokens=2))
    assert theirs.status_code == 200
    assert ours.status_code == 400 and ours.json()["error"]["param"] == "n"


def test_deliberate_difference_http_metrics(servers: tuple[ServerProcess, ServerProcess]) -> None:
    """Engine metrics are the same; our HTTP metrics come from a leaner middleware than vLLM's."""
    ours, theirs = (httpx.get(server.url + "/metrics").text for server in servers)
    assert "vllm:num_requests_running" in ours and "vllm:num_requests_running" in theirs
    assert "model_garden_requests_total" in ours and "http_requests_total" in theirs
    assert "http_requests_total" not in ours
