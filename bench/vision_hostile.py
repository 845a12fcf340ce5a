"""Hostile image inputs, side by side: vLLM's own OpenAI server and ours, on the tiny Idefics3.

Runs itself inside a network namespace with only loopback (`unshare -mn`, root), set up as
tests/vision/test_hostile_netns.py does: private addresses on `lo`, names for them in a private
/etc/hosts, and a recording server listening on all of them. For each input it prints the status
each server answered and whether the recording server got a request for it (the URL was fetched).

    .venv/bin/python bench/vision_hostile.py [--model-dir DIR]   # about 2 minutes

Not part of CI: vLLM's server is the baseline, expected to fail several of these.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

INSIDE = "MODEL_GARDEN_NETNS"


def outside(model_dir: Path) -> int:
    from tests.support.runtime import engine_env
    from tests.vision.test_hostile_netns import ADDRESSES, ADDRESSES6, HOSTS

    with tempfile.TemporaryDirectory() as tmp:
        hosts = Path(tmp) / "hosts"
        hosts.write_text(Path("/etc/hosts").read_text() + "".join(f"{a} {n}\n" for n, a in HOSTS.items()))
        setup = [
            "set -e",
            "mount --make-rprivate /",
            f"mount --bind {hosts} /etc/hosts",
            "ip link set lo up",
            *(f"ip addr add {address} dev lo" for address in ADDRESSES),
            *(f"ip -6 addr add {address} dev lo" for address in ADDRESSES6),
            f"exec {sys.executable} {Path(__file__).resolve()} --model-dir {model_dir}",
        ]
        env = engine_env(**{INSIDE: "1"}, VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1", HF_HUB_OFFLINE="1")
        return subprocess.run(["unshare", "-mn", "sh", "-c", "\n".join(setup)], cwd=ROOT, env=env).returncode


def inputs(recorder: Any, allowed: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    """(name, content parts): the network cases of the test suite plus files, bombs and sizes."""
    from tests.vision.hostile_in_netns import cases
    from tests.vision.images import data_url, image_data_url, noisy_jpeg, png_declaring

    big = noisy_jpeg(4096, 4096, 24_000_000)

    def image(url: str) -> dict[str, Any]:
        return {"type": "image_url", "image_url": {"url": url}}

    out = [(url, [image(url)]) for url, _ in cases(recorder, allowed)]
    out += [
        ("file:///etc/hostname (a file outside any allowed dir)", [image("file:///etc/hostname")]),
        ("PNG declaring 20000x20000 (bomb)", [image(data_url(png_declaring(20000, 20000)))]),
        ("a real 24 MB JPEG as a data URL (32 MB of base64)", [image(data_url(big, "image/jpeg"))]),
        ("12 images in one request (we allow 8)", [image(image_data_url()) for _ in range(12)]),
        ("bytes that are not an image", [image(data_url(b"<html>admin</html>" * 20))]),
        ("broken base64", [image("data:image/png;base64,iVBORw0KGgo$$$")]),
    ]
    return out


def run_against(
    name: str, argv: list[str], port: int, cases: list[tuple[str, list[Any]]], recorder: Any
) -> list[str]:
    import httpx
    from tests.support.runtime import running_server

    results = []
    log = Path(tempfile.mkdtemp()) / f"{name}.log"
    with running_server(argv, port, log, timeout=300) as server:
        for label, content in cases:
            recorder.reset()
            try:
                response = httpx.post(
                    server.url + "/v1/chat/completions",
                    json={
                        "model": "vision",
                        "messages": [{"role": "user", "content": content}],
                        "max_tokens": 2,
                    },
                    timeout=60,
                )
                status = str(response.status_code)
            except httpx.HTTPError as error:
                status = type(error).__name__
            # Requests, not connections: vLLM's HTTP client keeps connections alive between cases.
            fetched = " +fetch" if recorder.requests else ""
            results.append(f"{status}{fetched}")
            print(f"  {name}: {status}{fetched:7} {label[:80]}", flush=True)
        healthy = httpx.get(server.url + "/health", timeout=10).status_code
        print(f"  {name}: /health after all: {healthy}", flush=True)
    return results


def inside(model_dir: Path) -> int:
    from tests.support.image_server import ImageServer
    from tests.support.runtime import BIN, TEST_ENGINE_ARGS, free_port, serve_model_argv

    with ImageServer(host="::") as recorder, ImageServer() as allowed:
        cases = inputs(recorder, allowed)
        port = free_port()
        vllm_argv = [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(model_dir),
            "--served-model-name",
            "vision",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *TEST_ENGINE_ARGS,
        ]
        theirs = run_against("vllm", vllm_argv, port, cases, recorder)
        port = free_port()
        ours_argv = serve_model_argv(
            model_dir,
            port,
            "--served-model-name",
            "vision",
            "--allowed-image-hosts",
            f"127.0.0.1:{allowed.port}",
        )
        ours = run_against("ours", ours_argv, port, cases, recorder)
        assert BIN
    print("\n| input | vLLM's server | Model Garden |\n|---|---|---|")
    for (label, _), their, our in zip(cases, theirs, ours, strict=True):
        print(f"| `{label[:90]}` | {their} | {our} |")
    print("\n`+fetch`: the recording server (on loopback and the private addresses) got a request for it.")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="the tiny Idefics3 (made in a temp dir if not given)")
    args = parser.parse_args()
    model_dir = args.model_dir
    if model_dir is None:
        from model_garden.demo_vision_model import create_demo_vision_model

        model_dir = create_demo_vision_model(Path(tempfile.mkdtemp()) / "idefics3")
    if os.environ.get(INSIDE) == "1":
        return inside(model_dir)
    return outside(model_dir)


if __name__ == "__main__":
    sys.exit(main())
