"""`kubectl mg chat` and `generate` through the emulated API server's service proxy, to the fake
model (fast) and to the real runtime on the demo model (slow): piped input, a real pseudo-terminal
for the interactive session, images, Ctrl+C, waiting for a model, and --url.

The proxy records every request as the runtime received it (after the API server stripped the
client's Authorization header) and can hold a streamed answer half-way, so the tests look at the
terminal while an answer is still unfinished.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pexpect
import pytest

from tests.emulator.cluster import Cluster
from tests.plugin.conftest import Upstream
from tests.plugin.emulator_proxy import ProxyingEmulator
from tests.plugin.fake_model import WORDS, FakeModel, answer_pieces
from tests.plugin.helpers import MG, one_line_error, put_model, run_mg, set_phase, spawn_mg
from tests.unit.test_image_refs import PNG_1x1

pytestmark = pytest.mark.timeout(300)

PNG_URL = "data:image/png;base64," + base64.b64encode(PNG_1x1).decode()


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


async def test_piped_stdin_is_one_message(
    upstream: Upstream, cluster: Cluster, emu: ProxyingEmulator, mg_env: dict[str, str]
) -> None:
    put_model(cluster, "demo", backend=upstream.url)
    env = {**mg_env, "MODEL_GARDEN_API_KEY": "sk-test"}
    args = ("chat", "demo", "--max-tokens", "8", "--temperature", "0", "--system-prompt", "Be brief")
    result = await run_mg(env, *args, stdin="Hello there\nThis whole input is one message\n")
    assert result.code == 0, result.stderr

    [request] = emu.proxied
    assert (request.method, request.path, request.status) == ("POST", "/v1/chat/completions", 200)
    assert request.body == {
        "model": "demo",
        "messages": [
            {"role": "system", "content": "Be brief"},
            {"role": "user", "content": "Hello there\nThis whole input is one message"},
        ],
        "max_tokens": 8,
        "temperature": 0.0,
        "stream": True,
    }
    forwarded = lower(request.headers)
    assert "authorization" not in forwarded  # the API server took the bearer token off
    assert forwarded["x-api-key"] == "sk-test"  # what an API key travels as, through the proxy
    assert request.deltas(), "the model answered"
    assert result.stdout == request.deltas() + "\n"  # only the answer on stdout
    assert "you>" not in result.stdout + result.stderr
    if upstream.fake is not None:
        assert result.stdout == "".join(answer_pieces(1, 0)) + "\n"


def _chat_until_prompt(chat: pexpect.spawn, text: str, timeout: float = 60) -> None:
    chat.sendline(text)
    chat.expect_exact("you> ", timeout=timeout)


async def test_terminal_chat_streams_keeps_history_and_exits(
    upstream: Upstream, cluster: Cluster, emu: ProxyingEmulator, mg_env: dict[str, str]
) -> None:
    put_model(cluster, "demo", backend=upstream.url)
    gate = emu.hold(after=6)  # the first answer stops after 6 events until released

    def session() -> tuple[int | None, str]:
        chat = spawn_mg(mg_env, "chat", "demo", "--system-prompt", "Be brief", "--max-tokens", "120")
        try:
            chat.expect_exact("you> ")
            chat.sendline("first question")
            chat.expect_exact("first question")  # the terminal's echo
            assert gate.reached.wait(60), "the answer never started"
            partial = emu.proxied[0].deltas()
            words = partial.split()
            assert words, f"the first events carried no text: {partial!r}"
            chat.expect_exact(words[-1], timeout=10)  # what has arrived so far is on screen...
            shown = chat.before + chat.after
            assert "you> " not in shown  # ...while the answer is unfinished
            assert not emu.proxied[0].completed
            gate.release.set()
            chat.expect_exact("you> ", timeout=60)
            _chat_until_prompt(chat, "second question")
            chat.sendline("/history")
            chat.expect_exact("[system] Be brief")
            chat.expect_exact("[user] first question")
            chat.expect_exact("[assistant]")
            chat.expect_exact("[user] second question")
            chat.expect_exact("you> ")
            chat.sendline("exit")
            chat.expect(pexpect.EOF, timeout=30)
            return chat.wait(), shown
        finally:
            chat.close()

    status, shown = await asyncio.to_thread(session)
    assert status == 0
    first, second = emu.proxied
    assert first.completed and second.completed
    answer = first.deltas()
    assert second.body["messages"] == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "second question"},
    ]
    if upstream.fake is not None:
        assert answer == "".join(answer_pieces(1, 0))
        assert WORDS[-1] not in shown  # the end of the answer was not there yet


async def test_ctrl_c_stops_the_answer_and_the_session_goes_on(
    upstream: Upstream, cluster: Cluster, emu: ProxyingEmulator, mg_env: dict[str, str]
) -> None:
    put_model(cluster, "demo", backend=upstream.url)
    gate = emu.hold(after=4)

    def session() -> int | None:
        chat = spawn_mg(mg_env, "chat", "demo", "--max-tokens", "120")
        try:
            chat.expect_exact("you> ")
            chat.sendline("tell me a long story")
            assert gate.reached.wait(60), "the answer never started"
            chat.sendintr()  # Ctrl+C
            chat.expect_exact("[answer interrupted]")
            chat.expect_exact("you> ")
            assert emu.proxied[0].done.wait(10), "the proxy never saw the client go"
            chat.sendline("/history")
            chat.expect_exact("[no messages yet]")  # the interrupted turn is not kept
            _chat_until_prompt(chat, "are you there?")
            chat.sendline("quit")
            chat.expect(pexpect.EOF, timeout=30)
            return chat.wait()
        finally:
            chat.close()

    assert await asyncio.to_thread(session) == 0
    interrupted, after = emu.proxied
    assert interrupted.client_gone and not interrupted.completed
    assert after.completed and after.deltas()
    assert after.body["messages"] == [{"role": "user", "content": "are you there?"}]


async def test_images_from_the_command_line_and_in_session(
    upstream: Upstream, cluster: Cluster, emu: ProxyingEmulator, mg_env: dict[str, str], tiny_png: Path
) -> None:
    put_model(cluster, "demo", backend=upstream.url)

    def session() -> tuple[int | None, str]:
        chat = spawn_mg(mg_env, "chat", "demo", "--image", str(tiny_png), "--max-tokens", "8")
        try:
            chat.expect_exact("you> ")
            _chat_until_prompt(chat, "what is in this picture?")
            answer = chat.before
            chat.sendline(f"/image {tiny_png}")
            chat.expect_exact(f"[image attached to your next message: {tiny_png}]")
            _chat_until_prompt(chat, "and this one?")
            chat.sendline("/image /no/such/file.png")
            chat.expect_exact("error: image file not found: /no/such/file.png")
            chat.sendline("exit")
            chat.expect(pexpect.EOF, timeout=30)
            return chat.wait(), answer
        finally:
            chat.close()

    status, answer = await asyncio.to_thread(session)
    assert status == 0
    first, second = emu.proxied
    image_part = {"type": "image_url", "image_url": {"url": PNG_URL}}
    assert first.body["messages"][-1] == {
        "role": "user",
        "content": [image_part, {"type": "text", "text": "what is in this picture?"}],
    }
    assert second.body["messages"][-1]["content"] == [image_part, {"type": "text", "text": "and this one?"}]
    if upstream.fake is not None:
        assert "[turn 1, 1 image(s)]" in answer
    else:
        # The demo model reads no images: the runtime says so, in one line, and the session goes on.
        assert first.status == 400 and "error: the model answered HTTP 400: " in answer


async def test_a_model_on_its_way_offers_to_wait(
    fake_model: FakeModel, cluster: Cluster, emu: ProxyingEmulator, mg_env: dict[str, str]
) -> None:
    put_model(
        cluster, "demo", phase="Loading", reason="ModelLoading", message="loading", backend=fake_model.url
    )
    loop = asyncio.get_running_loop()

    def ready() -> None:
        set_phase(cluster, "demo", "Ready", "ReplicasReady", "1/1 replicas ready")

    def session() -> int | None:
        chat = spawn_mg(mg_env, "chat", "demo")
        try:
            chat.expect_exact("Model demo is not Ready yet: Loading (ModelLoading: loading).")
            chat.expect_exact("Wait until it is Ready? [y/N]")
            chat.sendline("y")
            chat.expect_exact("demo: Loading, 0/1 ready")
            loop.call_soon_threadsafe(ready)
            chat.expect_exact("demo is Ready (1/1 ready).")
            _chat_until_prompt(chat, "hello")
            chat.sendline("exit")
            chat.expect(pexpect.EOF, timeout=30)
            return chat.wait()
        finally:
            chat.close()

    assert await asyncio.to_thread(session) == 0
    assert [r.body["messages"][-1]["content"] for r in emu.proxied] == ["hello"]

    set_phase(cluster, "demo", "Loading", "ModelLoading", "loading")

    def declined() -> tuple[int | None, str]:
        chat = spawn_mg(mg_env, "chat", "demo")
        try:
            chat.expect_exact("Wait until it is Ready? [y/N]")
            chat.sendline("")
            chat.expect(pexpect.EOF, timeout=30)
            return chat.wait(), chat.before
        finally:
            chat.close()

    status, tail = await asyncio.to_thread(declined)
    assert status == 1 and "error: model demo is not Ready: Loading" in tail and "Traceback" not in tail


async def test_wait_flag_waits_without_asking(
    fake_model: FakeModel, cluster: Cluster, mg_env: dict[str, str]
) -> None:
    put_model(
        cluster, "demo", phase="Pending", reason="PodsPending", message="starting", backend=fake_model.url
    )
    chat = await asyncio.create_subprocess_exec(
        MG, "chat", "demo", "--wait", "--timeout", "30s", env=mg_env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert chat.stderr is not None
    waiting = await asyncio.wait_for(chat.stderr.readline(), 30)  # it says it waits, and goes on waiting
    assert waiting.decode().startswith("demo: Pending, 0/1 ready") and chat.returncode is None
    set_phase(cluster, "demo", "Ready", "ReplicasReady", "1/1 replicas ready")
    out, err = await asyncio.wait_for(chat.communicate(b"hi"), 60)
    assert chat.returncode == 0, err
    assert "demo is Ready (1/1 ready)." in err.decode()
    assert out.decode() == "".join(answer_pieces(1, 0)) + "\n"

    set_phase(cluster, "demo", "Loading", "ModelLoading", "loading")
    timed_out = await run_mg(mg_env, "chat", "demo", "--wait", "--timeout", "2s", stdin="hi")
    assert timed_out.code == 1
    last = timed_out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: model demo not Ready after 2s: Loading (ModelLoading: loading); ")


async def test_url_talks_to_an_endpoint_directly(fake_model: FakeModel, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MODEL_GARDEN_API_KEY": "sk-direct"}
    result = await run_mg(env, "chat", "--url", fake_model.url + "/v1/", stdin="hi")  # no cluster at all
    assert result.code == 0, result.stderr
    assert result.stdout == "".join(answer_pieces(1, 0)) + "\n"
    headers = lower(fake_model.headers[0])
    assert headers["x-api-key"] == "sk-direct" and headers["authorization"] == "Bearer sk-direct"
    assert fake_model.requests[0]["model"] == "demo"  # the endpoint's own, from /v1/models

    wrong = await run_mg(env, "chat", "other", "--url", fake_model.url, stdin="hi")
    assert one_line_error(wrong) == "error: the model answered HTTP 404: The model `other` does not exist."
    refused = await run_mg(env, "chat", "demo", "--url", "http://127.0.0.1:9", stdin="hi")
    assert "error: cannot reach the model endpoint http://127.0.0.1:9: " in one_line_error(refused)


async def test_generate(
    upstream: Upstream, cluster: Cluster, emu: ProxyingEmulator, mg_env: dict[str, str]
) -> None:
    put_model(cluster, "demo", backend=upstream.url)
    plain = await run_mg(mg_env, "generate", "demo", "--prompt", "Hello", "--max-tokens", "6")
    assert plain.code == 0, plain.stderr
    streamed = await run_mg(mg_env, "generate", "demo", "--max-tokens", "6", "--stream", stdin="Hello")
    assert streamed.code == 0, streamed.stderr
    first, second = emu.proxied
    assert first.path == second.path == "/v1/completions"
    assert first.body == {"model": "demo", "prompt": "Hello", "max_tokens": 6}
    assert second.body == {"model": "demo", "prompt": "Hello", "max_tokens": 6, "stream": True}
    assert plain.stdout.strip() and streamed.stdout.strip()
    if upstream.fake is not None:
        expected = "Hello →" + "".join(f" {word}" for word in WORDS) + "\n"
        assert plain.stdout == streamed.stdout == expected
