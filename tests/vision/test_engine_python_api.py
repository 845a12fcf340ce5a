"""Images through the Python API (`InferenceService`, in this process) on the real engine with the
tiny Idefics3: the same pipeline as the HTTP routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from model_garden.demo_vision_model import PROMPT_TOKENS_PER_IMAGE
from model_garden.inference import InferenceError, InferenceService
from model_garden_common.vision import VisionSettings
from tests.support.image_server import ImageServer
from tests.vision.images import image_data_url

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def service(
    vision_model_dir: Path, allowed_image_server: ImageServer, image_dirs: dict[str, Path]
) -> AsyncIterator[InferenceService]:
    vision = VisionSettings(
        allowed_image_hosts=(f"127.0.0.1:{allowed_image_server.port}",),
        allowed_local_image_dir=str(image_dirs["allowed"]),
        max_images_per_request=4,
    )
    service = InferenceService(
        max_model_len=256, dtype="float32", enforce_eager=True, served_model_name="py-vision", vision=vision
    )
    await service.load_model(str(vision_model_dir))
    yield service
    await service.unload_model()


def urls(server: ImageServer, dirs: dict[str, Path]) -> list[str]:
    return [image_data_url(), server.url("/image.jpg"), f"file://{dirs['allowed']}/cat.png"]


async def test_generate_with_images_from_every_source(
    service: InferenceService, allowed_image_server: ImageServer, image_dirs: dict[str, Path]
) -> None:
    images = urls(allowed_image_server, image_dirs)
    one = await service.generate("Describe", images=images[:1], max_tokens=3, temperature=0)
    assert set(one) == {"text", "finish_reason", "usage"} and one["finish_reason"] == "length"
    for url in images[1:]:
        each = await service.generate("Describe", images=[url], max_tokens=3, temperature=0)
        assert each["usage"]["prompt_tokens"] == one["usage"]["prompt_tokens"]
    three = await service.generate("Describe", images=images, max_tokens=3, temperature=0)
    assert three["usage"]["prompt_tokens"] == one["usage"]["prompt_tokens"] + 2 * PROMPT_TOKENS_PER_IMAGE


async def test_generate_streams_with_images(
    service: InferenceService, allowed_image_server: ImageServer, image_dirs: dict[str, Path]
) -> None:
    images = urls(allowed_image_server, image_dirs)
    chunks = [c async for c in await service.generate("Describe", images=images, max_tokens=4, stream=True)]
    assert all(set(chunk) == {"text", "finish_reason"} for chunk in chunks)
    assert chunks[-1]["finish_reason"] == "length"


async def test_chat_completion_with_images(
    service: InferenceService, allowed_image_server: ImageServer
) -> None:
    messages = [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": allowed_image_server.url("/image.gif")}}],
        },
        {"role": "assistant", "content": "A picture."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "And this?"},
                {"type": "image_url", "image_url": {"url": image_data_url()}},
            ],
        },
    ]
    reply = await service.chat_completion(messages, max_tokens=3)
    assert reply["object"] == "chat.completion" and reply["model"] == "py-vision"
    assert messages[0]["content"][0]["image_url"]["url"].startswith("http://")  # the caller's own, untouched


@pytest.mark.parametrize(
    ("images", "reason"),
    [
        (["http://127.0.0.1:{port}/image.png"], "address_not_allowed"),
        (["http://0x7f000001:{port}/image.png"], "address_not_allowed"),
        (["http://[::1]:{port}/image.png"], "address_not_allowed"),
        (["file:///etc/passwd"], "path_not_allowed"),
        (["data:image/png;base64,!!!!"], "invalid_data_url"),
        ([image_data_url()] * 5, "too_many_images"),
    ],
)
async def test_refusals_are_inference_errors(
    service: InferenceService, images: list[str], reason: str
) -> None:
    with ImageServer() as recorder:
        with pytest.raises(InferenceError) as caught:
            await service.generate(
                "x", images=[url.format(port=recorder.port) for url in images], max_tokens=2
            )
        assert recorder.connections == []
    assert caught.value.status_code == 400 and f"({reason})" in caught.value.message
    assert caught.value.to_body()["error"]["code"] == 400
    assert await service.is_healthy()
