"""Production behaviour of the runtime: API keys, metrics, client disconnects, graceful drain."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.runtime import ServerProcess, free_port, serve_model_argv
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

KEY = "sk-test-right-key"
ADMIN_KEY = "sk-test-admin-key"
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def keyed_server(demo_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that needs API keys; the drain test at the end of this module stops it."""
    directory = tmp_path_factory.mktemp("keyed")
    (directory / "keys").write_text("# comment lines are skipped\nsk-other\n" + KEY + "\n")
    (directory / "admin").write_text(ADMIN_KEY + "\n")
    port = free_port()
    argv = serve_model_argv(
        demo_model_dir,
        port,
        "--served-model-name",
        "demo",
        "--api-key-file",
        str(directory / "keys"),
        "--admin-api-key-file",
        str(directory / "admin"),
    )
    server = ServerProcess(argv, port, directory / "server.log")
    try:
        server.wait_for("/health", 240)
        yield server
    finally:
        server.stop()


def chat_body(max_tokens: int = 4, stream: bool = False) -> dict[str, Any]:
    return {
        "model": "demo",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": max_tokens,
        "stream": stream,
        "ignore_eos": True,
    }


def test_openai_client_with_right_wrong_and_no_key(keyed_server: ServerProcess) -> None:
    def client(key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=keyed_server.url + "/v1", api_key=key, max_retries=0)

    reply = client(KEY).chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert reply.usage.completion_tokens == 4
    # A wrong key, and no key at all (the SDK insists on one: its header is omitted per request).
    for key, headers in (("sk-wrong", {}), ("-", {"Authorization": openai.Omit()})):
        with pytest.raises(openai.AuthenticationError) as caught:
            client(key).models.list(extra_headers=headers)
        assert caught.value.status_code == 401
        assert set(caught.value.body) == {"message", "type", "param", "code"}


def test_x_api_key_header_and_open_routes(keyed_server: ServerProcess) -> None:
    url = keyed_server.url
    assert httpx.post(url + CHAT, json=chat_body(), headers={"X-API-Key": KEY}, timeout=60).status_code == 200
    refused = httpx.post(url + CHAT, json=chat_body(), timeout=60)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == 401
    for path in ("/health", "/livez", "/metrics"):
        assert httpx.get(url + path).status_code == 200


def test_management_routes_need_the_admin_key(keyed_server: ServerProcess) -> None:
    url = keyed_server.url + "/api/v1/inference/unload"
    assert httpx.post(url, headers={"X-API-Key": KEY}).status_code == 401
    assert (
        httpx.get(keyed_server.url + "/api/v1/inference/status", headers={"X-API-Key": KEY}).status_code
        == 200
    )


def test_a_rotated_key_file_takes_effect_without_a_restart(keyed_server: ServerProcess) -> None:
    keys = keyed_server.log_path.parent / "keys"
    original = keys.read_text()
    models = keyed_server.url + "/v1/models"

    def accepted(key: str) -> bool:
        return httpx.get(models, headers={"X-API-Key": key}, timeout=30).status_code == 200

    def rotate(text: str) -> None:
        staged = keys.with_name("keys.new")
        staged.write_text(text)
        os.replace(staged, keys)  # atomically, as the kubelet swaps a Secret volume's files

    assert accepted(KEY) and not accepted("sk-rotated")
    try:
        rotate("sk-rotated\n")
        wait_until(lambda: accepted("sk-rotated"), 15, interval=0.25, what="the rotated key")
        assert not accepted(KEY)
        rotate("")  # emptied by mistake: the keys in force stay, the API does not open
        # The files are looked at on a request's way in: keep asking until the warning is logged.
        wait_until(
            lambda: accepted("sk-rotated") and "keeping the previous" in keyed_server.log_path.read_text(),
            15,
            interval=0.25,
            what="the warning about the emptied key file",
        )
        assert accepted("sk-rotated") and httpx.get(models, timeout=30).status_code == 401
    finally:
        rotate(original)
        wait_until(lambda: accepted(KEY), 15, interval=0.25, what="the original key again")


def test_keys_never_reach_the_log(keyed_server: ServerProcess) -> None:
    log = keyed_server.log_path.read_text(errors="replace")
    assert "API keys re-read from" in log  # the rotation above is logged, its keys are not
    assert KEY not in log and "sk-rotated" not in log


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_our_metrics_sit_beside_vllms(runtime_server: Any) -> None:
    httpx.post(runtime_server.url + CHAT, json=chat_body(), timeout=60)
    httpx.get(runtime_server.url + "/no/such/route")
    text = httpx.get(runtime_server.url + "/metrics").text
    assert metric(text, "model_garden_requests_total", route=CHAT, status="200") >= 1
    assert metric(text, "model_garden_requests_total", route="unmatched", status="404") >= 1
    assert metric(text, "model_garden_time_to_first_byte_seconds_count", route=CHAT) >= 1
    assert metric(text, "model_garden_request_duration_seconds_count", route=CHAT) >= 1
    assert "vllm:num_requests_running" in text
    assert re.search(r"^model_garden_requests_in_flight", text, re.M)


async def _hang_up_after_first_chunk(url: str) -> None:
    body = chat_body(max_tokens=200, stream=True)
    async with (
        httpx.AsyncClient(timeout=60) as client,
        client.stream("POST", url + CHAT, json=body) as response,
    ):
        async for _ in response.aiter_bytes():
            return  # closing the response and the client drops the connection


def test_disconnects_abort_engine_requests(runtime_server: Any) -> None:
    before = metric(
        httpx.get(runtime_server.url + "/metrics").text, "model_garden_requests_aborted_total", route=CHAT
    )

    async def sixteen() -> None:
        await asyncio.gather(*(_hang_up_after_first_chunk(runtime_server.url) for _ in range(16)))

    asyncio.run(sixteen())

    def engine_idle() -> bool:
        text = httpx.get(runtime_server.url + "/metrics").text
        return (
            metric(text, "vllm:num_requests_running") == 0 and metric(text, "vllm:num_requests_waiting") == 0
        )

    wait_until(engine_idle, timeout=2, interval=0.05, what="vLLM's running-request gauge back at 0")

    def aborts_counted() -> bool:
        # Counted when each request's handling has unwound, which may trail the engine's abort.
        text = httpx.get(runtime_server.url + "/metrics").text
        return metric(text, "model_garden_requests_aborted_total", route=CHAT) >= before + 16

    wait_until(aborts_counted, timeout=5, interval=0.05, what="16 aborted requests counted")


async def _stream_to_the_end(url: str, started: asyncio.Queue[None]) -> tuple[str | None, bool]:
    finish, done, buffer = None, False, b""
    body = chat_body(max_tokens=220, stream=True)
    async with (
        httpx.AsyncClient(timeout=120, headers={"X-API-Key": KEY}) as client,
        client.stream("POST", url + CHAT, json=body) as response,
    ):
        assert response.status_code == 200
        announced = False
        async for piece in response.aiter_bytes():
            if not announced:
                announced = True
                started.put_nowait(None)
            buffer += piece
    for event in buffer.split(b"\n\n"):
        data = event.removeprefix(b"data: ").strip()
        if data == b"[DONE]":
            done = True
        elif data:
            for choice in json.loads(data)["choices"]:
                finish = choice.get("finish_reason") or finish
    return finish, done


def test_sigterm_drains_in_flight_streams_then_exits_0(keyed_server: ServerProcess) -> None:
    """Runs last in this module: it stops the server."""

    async def scenario() -> tuple[list[tuple[str | None, bool]], BaseException | int]:
        started: asyncio.Queue[None] = asyncio.Queue()
        streams = [asyncio.create_task(_stream_to_the_end(keyed_server.url, started)) for _ in range(32)]
        for _ in range(32):
            await asyncio.wait_for(started.get(), timeout=60)
        keyed_server.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)  # let the signal land; the streams are still running
        try:
            async with httpx.AsyncClient(timeout=10, headers={"X-API-Key": KEY}) as client:
                late: BaseException | int = (
                    await client.post(keyed_server.url + CHAT, json=chat_body())
                ).status_code
        except httpx.TransportError as error:
            late = error
        return await asyncio.gather(*streams), late

    results, late = asyncio.run(scenario())
    assert results == [("length", True)] * 32, "every in-flight stream ends normally, with [DONE]"
    assert isinstance(late, httpx.ConnectError) or late == 503, f"a request during the drain got {late!r}"
    assert keyed_server.process.wait(timeout=120) == 0
