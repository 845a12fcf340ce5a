"""Hostile image URLs against a real server, run INSIDE the network namespace that
test_hostile_netns.py sets up (skipped anywhere else; the file name keeps pytest from collecting it
on its own).

A recording server listens on every address of the namespace (127.0.0.1, ::1, 169.254.169.254,
10.1.2.3, 192.168.1.1, 172.16.0.1, 100.64.0.1, fd00::1); the model server allow-lists only another
image server (127.0.0.1:<its port>). Every case must be a 400 naming the reason, the recording
server must see no connection at all, and the server must stay healthy.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.image_server import ImageServer
from tests.support.runtime import ServerProcess, free_port, running_server, serve_model_argv

pytestmark = pytest.mark.skipif(
    os.environ.get("MODEL_GARDEN_NETNS") != "1", reason="runs inside test_hostile_netns.py's namespace"
)

MODEL = "vision"
PRIVATE = ("169.254.169.254", "10.1.2.3", "192.168.1.1", "172.16.0.1", "100.64.0.1", "[fd00::1]")


@pytest.fixture(scope="module")
def recorder() -> Iterator[ImageServer]:
    with ImageServer(host="::") as server:  # dual stack: every address of the namespace
        yield server


@pytest.fixture(scope="module")
def allowed() -> Iterator[ImageServer]:
    with ImageServer() as server:
        yield server


@pytest.fixture(scope="module")
def server(allowed: ImageServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    port = free_port()
    argv = serve_model_argv(
        Path(os.environ["MODEL_GARDEN_VISION_MODEL"]),
        port,
        "--served-model-name",
        MODEL,
        "--allowed-image-hosts",
        f"127.0.0.1:{allowed.port}",
    )
    with running_server(argv, port, tmp_path_factory.mktemp("netns") / "serve-model.log") as srv:
        yield srv


def chat(server: ServerProcess, url: str) -> httpx.Response:
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": url}}]
    return httpx.post(
        server.url + "/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 2},
        timeout=60,
    )


def cases(recorder: ImageServer, allowed: ImageServer) -> list[tuple[str, str]]:
    port = recorder.port

    def via_allowed(target: str) -> str:
        return allowed.url("/redirect?to=" + quote(target))

    loopback = [
        "127.0.0.1",
        "127.0.0.2",
        "2130706433",
        "0x7f000001",
        "0x7f.1",
        "0177.0.0.1",
        "127.1",
        "0",
        "0.0.0.0",
        "localhost",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::]",
    ]
    out = [(f"http://{host}:{port}/image.png", "address_not_allowed") for host in loopback]
    out += [(f"http://{host}:{port}/image.png", "address_not_allowed") for host in PRIVATE]
    out += [
        ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "address_not_allowed"),
        (f"https://169.254.169.254:{port}/", "address_not_allowed"),
        # Names resolving to them, through the system resolver (the namespace's /etc/hosts).
        (f"http://evil.test:{port}/image.png", "address_not_allowed"),
        (f"http://metadata.test:{port}/latest/meta-data/", "address_not_allowed"),
        (f"http://internal.test:{port}/image.png", "address_not_allowed"),
        # Redirects from the allow-listed server to them.
        (via_allowed(f"http://127.0.0.1:{port}/image.png"), "address_not_allowed"),
        (via_allowed(f"http://169.254.169.254:{port}/latest/meta-data/"), "address_not_allowed"),
        (via_allowed(f"http://10.1.2.3:{port}/image.png"), "address_not_allowed"),
        (via_allowed(f"http://evil.test:{port}/image.png"), "address_not_allowed"),
        (via_allowed(f"http://[::1]:{port}/image.png"), "address_not_allowed"),
        (via_allowed("file:///etc/passwd"), "unsupported_url"),
        # Userinfo and fragment tricks against the allow-list.
        (f"http://127.0.0.1:{allowed.port}@10.1.2.3:{port}/image.png", "unsupported_url"),
        (f"http://127.0.0.1:{allowed.port}@127.0.0.1:{port}/image.png", "unsupported_url"),
        (f"http://10.1.2.3:{port}#@127.0.0.1:{allowed.port}/image.png", "address_not_allowed"),
        (f"http://127.0.0.1:{port}/?@127.0.0.1:{allowed.port}/image.png", "address_not_allowed"),
        # The allow-listed host on another port is not allow-listed.
        (f"http://127.0.0.1:{port}/image.png?port={allowed.port}", "address_not_allowed"),
        # Files, without an allowed directory.
        ("file:///etc/passwd", "local_files_disabled"),
        ("file://localhost/etc/shadow", "local_files_disabled"),
        # No DNS in here: a public name cannot be resolved (and nothing is sent anywhere).
        ("http://example.com/cat.png", "fetch_failed"),
    ]
    return out


def test_the_recorder_would_see_a_connection(recorder: ImageServer) -> None:
    """Positive control: every address the cases aim at reaches the recording server."""
    for host in ("127.0.0.1", "[::1]", *PRIVATE):
        assert httpx.get(f"http://{host}:{recorder.port}/image.png", timeout=5).status_code == 200, host
    assert len(recorder.connections) == 2 + len(PRIVATE)
    recorder.reset()


def test_allowed_images_are_served(server: ServerProcess, allowed: ImageServer) -> None:
    response = chat(server, allowed.url("/image.png"))
    assert response.status_code == 200, response.text


def test_hostile_urls_are_400s_and_nothing_else(
    server: ServerProcess, recorder: ImageServer, allowed: ImageServer
) -> None:
    recorder.reset()
    results: list[tuple[str, int, Any]] = []
    for url, reason in cases(recorder, allowed):
        response = chat(server, url)
        message = response.json().get("error", {}).get("message", "")
        results.append((url, response.status_code, message))
        assert response.status_code == 400, (url, response.text[:300])
        assert f"({reason})" in message, (url, message)
    print(f"\n{len(results)} hostile image URLs, all 400:")
    for url, status, message in results:
        print(f"  {status} {url[:90]:90} {message.split('image refused ')[-1][:60]}")
    assert recorder.connections == [], recorder.connections
    assert httpx.get(server.url + "/health").status_code == 200
    assert server.process.poll() is None
    metrics = httpx.get(server.url + "/metrics").text
    assert 'model_garden_image_refusals_total{reason="address_not_allowed"}' in metrics
