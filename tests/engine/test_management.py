"""The seed's management routes on a server started with no model: load -> unload -> load."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.runtime import BIN, ServerProcess, free_port, running_server

pytestmark = pytest.mark.slow

LOAD_SETTINGS = {"max_model_len": 256, "dtype": "float32", "enforce_eager": True}


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    port = free_port()
    argv = [str(BIN / "model-garden"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with running_server(
        argv, port, tmp_path_factory.mktemp("serve") / "serve.log", ready_path="/livez"
    ) as srv:
        yield srv


def post(
    server: ServerProcess, path: str, body: dict[str, Any] | None = None, timeout: float = 30
) -> httpx.Response:
    return httpx.post(server.url + path, json=body or {}, timeout=timeout)


def test_no_model_means_503_but_alive(empty_server: ServerProcess) -> None:
    assert httpx.get(empty_server.url + "/livez").status_code == 200
    assert httpx.get(empty_server.url + "/health").status_code == 503
    status = httpx.get(empty_server.url + "/api/v1/inference/status").json()
    assert status["is_loaded"] is False and status["model_path"] is None
    for response in (
        httpx.get(empty_server.url + "/v1/models"),
        post(
            empty_server,
            "/v1/chat/completions",
            {"model": "x", "messages": [{"role": "user", "content": "hi"}]},
        ),
        post(empty_server, "/api/v1/inference/generate", {"prompt": "hi"}),
    ):
        assert response.status_code == 503
        assert response.json()["error"]["code"] == 503


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"model_path": "x", "quantization": "squeezellm"}, "accepted: awq"),
        ({"model_path": "x", "tensor_parallel_size": 0}, "tensor_parallel_size"),
        ({"model_path": "x", "gpu_memory_utilization": 1.5}, "gpu_memory_utilization"),
        ({"model_path": "x", "extra_args": ["--max-model-len=9"]}, "--max-model-len"),
        ({"model_path": "x", "unknown": 1}, "unknown"),
        ({}, "model_path"),
    ],
)
def test_load_rejects_bad_settings(empty_server: ServerProcess, body: dict[str, Any], needle: str) -> None:
    response = post(empty_server, "/api/v1/inference/load", body)
    assert response.status_code == 400
    assert needle in response.json()["error"]["message"]


def test_load_of_a_missing_model_is_a_clear_400(empty_server: ServerProcess, tmp_path: Path) -> None:
    response = post(
        empty_server,
        "/api/v1/inference/load",
        {"model_path": str(tmp_path / "nothing"), **LOAD_SETTINGS},
        timeout=120,
    )
    assert response.status_code == 400
    assert "cannot load" in response.json()["error"]["message"]
    assert httpx.get(empty_server.url + "/health").status_code == 503


def test_load_unload_load_another_model(
    empty_server: ServerProcess, demo_model_dir: Path, second_model_dir: Path
) -> None:
    loaded = post(
        empty_server,
        "/api/v1/inference/load",
        {"model_path": str(demo_model_dir), "served_model_name": "first", **LOAD_SETTINGS},
        timeout=300,
    )
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["is_loaded"] is True
    assert httpx.get(empty_server.url + "/health").status_code == 200
    generated = post(
        empty_server, "/api/v1/inference/generate", {"prompt": "Hi", "max_tokens": 3}, timeout=60
    )
    assert generated.json()["usage"]["completion_tokens"] == 3

    unloaded = post(empty_server, "/api/v1/inference/unload", timeout=120)
    assert unloaded.json()["is_loaded"] is False
    assert httpx.get(empty_server.url + "/health").status_code == 503

    reloaded = post(
        empty_server,
        "/api/v1/inference/load",
        {"model_path": str(second_model_dir), "served_model_name": "second", **LOAD_SETTINGS},
        timeout=300,
    )
    assert reloaded.status_code == 200, reloaded.text
    client = openai.OpenAI(base_url=empty_server.url + "/api/v1", api_key="unused", max_retries=0)
    assert [model.id for model in client.models.list().data] == ["second"]
    reply = client.chat.completions.create(
        model="second", messages=[{"role": "user", "content": "Hi"}], max_tokens=3
    )
    assert reply.usage.completion_tokens == 3
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="first", messages=[{"role": "user", "content": "Hi"}], max_tokens=3
        )
    assert post(empty_server, "/api/v1/inference/unload", timeout=120).status_code == 200


def test_management_routes_can_be_turned_off(tmp_path: Path) -> None:
    port = free_port()
    argv = [
        str(BIN / "model-garden"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--disable-management-routes",
    ]
    with running_server(argv, port, tmp_path / "serve.log", ready_path="/livez") as server:
        assert post(server, "/api/v1/inference/load", {"model_path": "x"}).status_code == 404
        assert post(server, "/api/v1/inference/unload").status_code == 404
        assert httpx.get(server.url + "/api/v1/inference/status").status_code == 200
