"""The pipeline over OpenAI chat messages: what it walks, what it rewrites, what it refuses first."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from model_garden.vision.pipeline import ImagePipeline, find_media
from model_garden_common import image_errors as errors
from model_garden_common.image_errors import ImageRefused
from model_garden_common.vision import VisionSettings
from tests.support.image_server import ImageServer
from tests.vision.images import data_url, image_data_url, make_image


def user(*parts: Any) -> dict[str, Any]:
    return {"role": "user", "content": list(parts)}


def image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


TEXT = {"type": "text", "text": "What is in the picture?"}


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def prepared(pipeline: ImagePipeline, messages: list[Any], accepts: bool = True) -> Any:
    return await pipeline.prepare(messages, accepts_images=accepts)


async def refused(
    pipeline: ImagePipeline, messages: list[Any], reason: str, accepts: bool = True
) -> ImageRefused:
    with pytest.raises(ImageRefused) as caught:
        await pipeline.prepare(messages, accepts_images=accepts)
    assert caught.value.reason == reason, caught.value.message
    return caught.value


async def test_text_only_requests_come_back_as_the_same_object() -> None:
    pipeline = ImagePipeline()
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": None, "tool_calls": []},
        user(TEXT, {"type": "text", "text": "more"}),
    ]
    assert await prepared(pipeline, messages, accepts=False) is messages
    assert find_media(messages) == ([], {})
    # Content that is not a list of parts is left to vLLM's validation, never turned into one.
    odd = [{"role": "user", "content": {"type": "image_url", "image_url": {"url": "http://10.0.0.1/"}}}]
    assert await prepared(pipeline, odd) is odd


async def test_data_url_images_pass_as_sent_and_the_caller_keeps_its_messages() -> None:
    pipeline = ImagePipeline()
    url = image_data_url()
    messages = [user(image(url), TEXT)]
    before = copy.deepcopy(messages)
    out = await prepared(pipeline, messages)
    assert out[0]["content"][0]["image_url"]["url"] is url  # no copy of a large string
    assert messages == before


async def test_every_part_shape_vllm_reads_an_image_from(image_server: ImageServer) -> None:
    pipeline = ImagePipeline(VisionSettings(allowed_image_hosts=(f"127.0.0.1:{image_server.port}",)))
    url = image_server.url("/image.png")
    messages = [
        user(image(url), {"type": "image_url", "image_url": url}),  # object and plain string
        user({"type": "input_image", "image_url": url}),  # Responses-style
        user({"image_url": url, "uuid": "x"}),  # no type (vLLM infers it from the key)
        {"role": "user", "content": (image(url), TEXT)},  # a tuple of parts
    ]
    before = copy.deepcopy(messages)
    out = await prepared(pipeline, messages)
    inlined = data_url(image_server.png)
    assert out[0]["content"][0]["image_url"] == {"url": inlined}
    assert out[0]["content"][1]["image_url"] == inlined
    assert out[1]["content"][0] == {"type": "input_image", "image_url": inlined}
    assert out[2]["content"][0] == {"image_url": inlined, "uuid": "x"}
    assert out[3]["content"] == [image(inlined), TEXT]
    assert len(image_server.requests) == 5
    assert messages == before


async def test_too_many_images_across_messages_is_refused_before_any_fetch(image_server: ImageServer) -> None:
    pipeline = ImagePipeline(
        VisionSettings(max_images_per_request=2, allowed_image_hosts=(f"127.0.0.1:{image_server.port}",))
    )
    url = image_server.url("/image.png")
    error = await refused(pipeline, [user(image(url), image(url)), user(image(url))], errors.TOO_MANY_IMAGES)
    assert "3 images" in error.message and "--max-images-per-request allows 2" in error.message
    assert image_server.connections == []


async def test_text_only_model_is_refused_before_any_fetch(image_server: ImageServer) -> None:
    pipeline = ImagePipeline(VisionSettings(allowed_image_hosts=(f"127.0.0.1:{image_server.port}",)))
    error = await refused(
        pipeline,
        [user(TEXT, image(image_server.url("/image.png")))],
        errors.MODEL_HAS_NO_VISION,
        accepts=False,
    )
    assert error.param == "messages[0].content[1].image_url"
    assert image_server.connections == []


async def test_audio_and_video_urls_only_as_data() -> None:
    pipeline = ImagePipeline()
    for key in ("audio_url", "video_url"):
        part = {"type": key, key: {"url": "http://169.254.169.254/x"}}
        await refused(pipeline, [user(part)], errors.UNSUPPORTED_MEDIA)
        inline = {"type": key, key: {"url": "data:audio/wav;base64,UklGRg=="}}
        assert (await prepared(pipeline, [user(inline)], accepts=False))[0]["content"][0] == inline


@pytest.mark.parametrize("value", [{"url": 5}, ["http://x"], 42])
async def test_image_url_values_that_are_not_urls(value: Any) -> None:
    await refused(ImagePipeline(), [user({"type": "image_url", "image_url": value})], errors.UNSUPPORTED_URL)


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "ftp://x/y.png", "/etc/passwd", "C:\\x.png", "", "HTTP//x", "image.png"]
)
async def test_unknown_schemes(url: str) -> None:
    await refused(ImagePipeline(), [user(image(url))], errors.UNSUPPORTED_URL)


async def test_refusals_name_the_part() -> None:
    messages = [user(TEXT), user(TEXT, image(image_data_url()), image("data:image/png;base64,@@"))]
    error = await refused(ImagePipeline(), messages, errors.INVALID_DATA_URL)
    assert error.param == "messages[1].content[2].image_url"
    assert error.describe().startswith("messages[1].content[2].image_url: image refused (invalid_data_url)")


async def test_file_urls_from_the_allowed_directory(tmp_path: Path) -> None:
    (tmp_path / "cat.png").write_bytes(make_image())
    pipeline = ImagePipeline(VisionSettings(allowed_local_image_dir=str(tmp_path)))
    out = await prepared(pipeline, [user(image(f"file://{tmp_path}/cat.png"))])
    assert out[0]["content"][0]["image_url"]["url"] == data_url(make_image())
    await refused(ImagePipeline(), [user(image(f"file://{tmp_path}/cat.png"))], errors.LOCAL_FILES_DISABLED)


async def test_several_fetches_at_once_and_metrics(image_server: ImageServer) -> None:
    pipeline = ImagePipeline(VisionSettings(allowed_image_hosts=(f"127.0.0.1:{image_server.port}",)))
    accepted = metric("model_garden_images_accepted_total", source="http")
    size = metric("model_garden_image_bytes_total", source="http")
    inline = metric("model_garden_images_accepted_total", source="data")
    paths = ["/image.png", "/image.jpg", "/image.gif", "/image.webp"]
    out = await prepared(
        pipeline, [user(*[image(image_server.url(p)) for p in paths], image(image_data_url()))]
    )
    assert [part["image_url"]["url"][:15] for part in out[0]["content"]] == [
        "data:image/png;",
        "data:image/jpeg",
        "data:image/gif;",
        "data:image/webp",
        "data:image/png;",
    ]
    assert metric("model_garden_images_accepted_total", source="http") == accepted + 4
    assert metric("model_garden_images_accepted_total", source="data") == inline + 1
    assert metric("model_garden_image_bytes_total", source="http") > size


async def test_one_refusal_refuses_the_request_and_counts_its_reason(image_server: ImageServer) -> None:
    pipeline = ImagePipeline(VisionSettings(allowed_image_hosts=(f"127.0.0.1:{image_server.port}",)))
    before = metric("model_garden_image_refusals_total", reason=errors.ADDRESS_NOT_ALLOWED)
    accepted = metric("model_garden_images_accepted_total", source="http")
    messages = [user(image(image_server.url("/image.png")), image("http://169.254.169.254/"))]
    await refused(pipeline, messages, errors.ADDRESS_NOT_ALLOWED)
    assert metric("model_garden_image_refusals_total", reason=errors.ADDRESS_NOT_ALLOWED) == before + 1
    assert metric("model_garden_images_accepted_total", source="http") == accepted


def test_every_reason_is_on_the_metrics_from_the_start() -> None:
    for reason in errors.REASONS:
        assert REGISTRY.get_sample_value("model_garden_image_refusals_total", {"reason": reason}) is not None


async def test_no_url_but_data_urls_reaches_the_engine(image_server: ImageServer, tmp_path: Path) -> None:
    """Whatever mix comes in, what goes out to vLLM carries only data URLs (vLLM never fetches)."""
    (tmp_path / "a.png").write_bytes(make_image())
    pipeline = ImagePipeline(
        VisionSettings(
            allowed_image_hosts=(f"127.0.0.1:{image_server.port}",), allowed_local_image_dir=str(tmp_path)
        )
    )
    url = image_server.url("/image.png")
    messages = [
        {"role": "system", "content": [TEXT]},
        user(image(url), {"type": "image_url", "image_url": f"file://{tmp_path}/a.png"}),
        {"role": "assistant", "content": [{"type": "input_image", "image_url": image_data_url()}]},
        {
            "role": "tool",
            "content": [{"image_url": {"url": url, "detail": "low"}, "uuid": "u"}],
            "tool_call_id": "1",
        },
        user({"type": "audio_url", "audio_url": {"url": "data:audio/wav;base64,UklGRg=="}}),
    ]
    out = await prepared(pipeline, messages)
    refs, _ = find_media(out)
    assert len(refs) == 5
    assert all(ref.url.startswith("data:") for ref in refs)
    assert out[3]["content"][0]["image_url"]["detail"] == "low"  # the rest of the part is kept
