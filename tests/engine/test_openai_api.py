"""The official `openai` client against our server, on the real vLLM CPU engine."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.support.shapes import sse_data

pytestmark = pytest.mark.slow

MODEL = "demo"
BASE_PATHS = ("/v1", "/api/v1")


@pytest.fixture(scope="module", params=BASE_PATHS)
def client(request: pytest.FixtureRequest, runtime_server: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=runtime_server.url + request.param, api_key="unused", max_retries=0)


def test_models_lists_the_served_name(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [model.id for model in models.data] == [MODEL]


def test_chat_completion(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hello"}], max_tokens=8, temperature=0
    )
    assert reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    assert reply.choices[0].message.role == "assistant"
    assert isinstance(reply.choices[0].message.content, str)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 8
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 8


def test_chat_completion_streams_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Hello"}],
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6


def test_completion_and_streaming_completion(client: openai.OpenAI) -> None:
    reply = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=5)
    assert reply.object == "text_completion"
    assert reply.usage.completion_tokens == 5
    pieces = list(client.completions.create(model=MODEL, prompt="Once", max_tokens=5, stream=True))
    assert pieces[-1].choices[0].finish_reason == "length"


def test_stream_ends_with_done(runtime_server: Any) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "stream": True}
    response = httpx.post(runtime_server.url + "/v1/chat/completions", json=body, timeout=60)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert sse_data(response.text)[-1] == "[DONE]"


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"temperature": -1.0}, "temperature"),
        ({"max_tokens": 100_000}, "max_tokens"),
        ({"top_p": 7}, None),
        ({"messages": []}, None),
    ],
)
def test_invalid_parameters_are_400_with_openai_body(
    client: openai.OpenAI, overrides: dict[str, Any], param: str | None
) -> None:
    request = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, **overrides}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**request)
    error = caught.value.body
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["code"] == 400
    if param:
        assert error["param"] == param


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.body["code"] == 404


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"model": "demo"}', b'{"model": "demo", "messages": "hello"}', b""],
    ids=["broken-json", "missing-messages", "wrong-type", "empty-body"],
)
def test_malformed_bodies_are_400(runtime_server: Any, content: bytes) -> None:
    response = httpx.post(
        runtime_server.url + "/v1/chat/completions",
        content=content,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_health_liveness_metrics_docs(runtime_server: Any) -> None:
    url = runtime_server.url
    assert httpx.get(url + "/health").status_code == 200
    assert httpx.get(url + "/livez").json() == {"status": "alive"}
    metrics = httpx.get(url + "/metrics").text
    assert "vllm:num_requests_running" in metrics
    assert httpx.get(url + "/docs").status_code == 200


def test_management_generate(runtime_server: Any) -> None:
    response = httpx.post(
        runtime_server.url + "/api/v1/inference/generate",
        json={"prompt": "Hello", "max_tokens": 4},
        timeout=60,
    )
    assert response.status_code == 200
    result = response.json()
    assert set(result) == {"text", "finish_reason", "usage"}
    assert result["finish_reason"] == "length"
    assert result["usage"]["completion_tokens"] == 4


def test_management_generate_streams_seed_shape(runtime_server: Any) -> None:
    body = {"prompt": "Hello", "max_tokens": 5, "stream": True}
    response = httpx.post(runtime_server.url + "/api/v1/inference/generate", json=body, timeout=60)
    payloads = sse_data(response.text)
    assert "[DONE]" not in payloads
    events = [json.loads(payload) for payload in payloads]
    assert all(set(event) == {"text", "finish_reason"} for event in events)
    assert events[-1]["finish_reason"] == "length"
    assert all(event["finish_reason"] is None for event in events[:-1])


@pytest.mark.parametrize(
    "body", [{"prompt": ""}, {"prompt": "x", "temperature": -1}, {"prompt": "x", "max_tokens": 100_000}, {}]
)
def test_management_generate_rejects_bad_input(runtime_server: Any, body: dict[str, Any]) -> None:
    response = httpx.post(runtime_server.url + "/api/v1/inference/generate", json=body, timeout=30)
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_status_reports_the_loaded_model(runtime_server: Any) -> None:
    status = httpx.get(runtime_server.url + "/api/v1/inference/status").json()
    assert status["is_loaded"] is True
    assert status["served_model_name"] == MODEL
    assert isinstance(status["timestamp"], float)
