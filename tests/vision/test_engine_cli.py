"""`model-garden inference-generate --image` and `inference-chat --image` on the real engine with the
tiny Idefics3."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.image_server import ImageServer
from tests.support.runtime import BIN, TEST_ENGINE_ARGS, engine_env

pytestmark = pytest.mark.slow


def test_cli_inference_generate_with_images(
    vision_model_dir: Path, allowed_image_server: ImageServer, image_dirs: dict[str, Path]
) -> None:
    """A local file (sent as a data URL by the client side) and an allow-listed http URL."""
    requests_before = len(allowed_image_server.requests)
    result = subprocess.run(
        [
            str(BIN / "model-garden"),
            "inference-generate",
            "--model-path",
            str(vision_model_dir),
            "--prompt",
            "Describe the pictures",
            "--image",
            str(image_dirs["allowed"] / "cat.png"),
            "--image",
            allowed_image_server.url("/image.webp"),
            "--allowed-image-hosts",
            f"127.0.0.1:{allowed_image_server.port}",
            "--max-tokens",
            "4",
            "--no-stream",
            *TEST_ENGINE_ARGS,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=engine_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip()
    assert [r.path for r in allowed_image_server.requests[requests_before:]] == ["/image.webp"]


def test_cli_inference_chat_with_an_image_and_piped_input(
    vision_model_dir: Path, allowed_image_server: ImageServer
) -> None:
    """With stdin piped the input is one message, the (allow-listed, fetched) image attached to it."""
    base = [str(BIN / "model-garden"), "inference-chat", "--model-path", str(vision_model_dir)]
    common = ["--max-tokens", "4", *TEST_ENGINE_ARGS]
    allowed = ["--allowed-image-hosts", f"127.0.0.1:{allowed_image_server.port}"]
    result = subprocess.run(
        [*base, "--image", allowed_image_server.url("/image.png"), *allowed, *common],
        input="What is in this picture?\n",
        capture_output=True,
        text=True,
        timeout=300,
        env=engine_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip()
