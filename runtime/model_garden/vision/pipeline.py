"""The image pipeline: every image in a chat request is checked (and fetched) here, before vLLM.

    pipeline = ImagePipeline(VisionSettings(...))
    messages = await pipeline.prepare(messages, accepts_images=True)

`prepare` finds the media parts of OpenAI chat messages (only list contents are walked, so a
text-only request costs one type check per message and comes back as the same object), refuses the
request with ImageRefused when a limit or the fetch policy says so, and otherwise returns messages
whose every image is a base64 data URL of a checked PNG, JPEG, WebP or GIF:
- `data:image/...;base64,` URLs: sizes checked before decoding, decoded in memory, kept as sent;
- `http(s)://` URLs: fetched by fetcher.ImageFetcher under the address policy;
- `file://` URLs: read by decoder.read_local_file from the allowed directory only.
So vLLM never fetches a URL nor opens a file. Audio and video URL parts (which vLLM would fetch
too) pass only as data URLs. The caller's messages are never modified.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from model_garden.vision import metrics
from model_garden.vision.decoder import (
    CheckedImage,
    decode_base64,
    inspect_image,
    parse_data_url,
    read_local_file,
    to_data_url,
)
from model_garden.vision.fetcher import ImageFetcher, Resolver
from model_garden_common.image_errors import (
    MODEL_HAS_NO_VISION,
    TOO_MANY_IMAGES,
    UNSUPPORTED_MEDIA,
    UNSUPPORTED_URL,
    ImageRefused,
)
from model_garden_common.settings import SettingsError
from model_garden_common.vision import VisionSettings

IMAGE_KEY = "image_url"
# Other parts whose URL vLLM would fetch or open itself.
OTHER_MEDIA_KEYS = ("audio_url", "video_url")
MEDIA_KEYS = (IMAGE_KEY, *OTHER_MEDIA_KEYS)
# Images decoded at once, server-wide: decoding is CPU-bound, and this bounds the memory that
# decoded pixels take (at most 4 bytes x --max-image-pixels each).
DECODE_SLOTS = max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True, eq=False)  # hashed by identity: `value` may be a dict
class MediaRef:
    """A media part of a chat request: messages[message].content[part][key]."""

    message: int
    part: int
    key: str
    value: Any

    @property
    def param(self) -> str:
        return f"messages[{self.message}].content[{self.part}].{self.key}"

    @property
    def url(self) -> Any:
        return self.value.get("url") if isinstance(self.value, Mapping) else self.value


def find_media(messages: Sequence[Any]) -> tuple[list[MediaRef], dict[int, list[Any]]]:
    """The media parts of `messages`, and the contents that had to be made lists to be walked."""
    refs: list[MediaRef] = []
    listed: dict[int, list[Any]] = {}
    for index, message in enumerate(messages):
        content = message.get("content") if isinstance(message, Mapping) else None
        if content is None or isinstance(content, str | Mapping | bytes):
            continue  # text, nothing, or not a list of parts (vLLM's validation refuses those)
        if not isinstance(content, list):
            # A tuple or any other iterable of parts: walked once, passed on as this list.
            content = listed[index] = list(content)
        for part_index, part in enumerate(content):
            if isinstance(part, Mapping):
                for key in MEDIA_KEYS:
                    if key in part:
                        refs.append(MediaRef(index, part_index, key, part[key]))
    return refs, listed


def allowed_dirs(directory: str | None) -> tuple[str, ...] | None:
    """The allowed local directory as configured and as its real path; SettingsError if unusable."""
    if directory is None:
        return None
    real = os.path.realpath(directory)
    if not os.path.isdir(real):
        raise SettingsError(f"--allowed-local-image-dir {directory}: not an existing directory")
    configured = os.path.normpath(directory)
    return (configured, real) if configured != real else (real,)


class ImagePipeline:
    def __init__(
        self,
        settings: VisionSettings | None = None,
        *,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings or VisionSettings()
        self.fetcher = ImageFetcher(self.settings, resolver=resolver, ssl_context=ssl_context)
        self.allowed_dirs = allowed_dirs(self.settings.allowed_local_image_dir)
        self._decoders = ThreadPoolExecutor(DECODE_SLOTS, thread_name_prefix="model-garden-image")

    async def prepare(
        self, messages: Sequence[Any], *, accepts_images: bool | Callable[[], bool]
    ) -> Sequence[Any]:
        """`messages` with every image checked and inlined (the same object when there is none).

        `accepts_images` (or a function answering it, asked only when there are images) says
        whether the model takes images at all."""
        refs, listed = find_media(messages)
        if not refs and not listed:
            return messages
        try:
            return await self._prepare(messages, refs, listed, accepts_images)
        except ImageRefused as refusal:
            metrics.refused(refusal.reason)
            raise

    async def _prepare(
        self,
        messages: Sequence[Any],
        refs: list[MediaRef],
        listed: dict[int, list[Any]],
        accepts_images: bool | Callable[[], bool],
    ) -> list[Any]:
        images = [ref for ref in refs if ref.key == IMAGE_KEY]
        limit = self.settings.max_images_per_request
        if len(images) > limit:
            raise ImageRefused(
                TOO_MANY_IMAGES,
                f"the request carries {len(images)} images; --max-images-per-request allows {limit}",
                param="messages",
            )
        if images and not (accepts_images() if callable(accepts_images) else accepts_images):
            raise ImageRefused(
                MODEL_HAS_NO_VISION,
                "the served model takes no images (it is a text-only model)",
                param=images[0].param,
            )
        for ref in refs:
            if ref.key != IMAGE_KEY and ref.url is not None and not _is_data_url(ref.url):
                raise ImageRefused(
                    UNSUPPORTED_MEDIA, f"{ref.key} parts are accepted only as data: URLs", param=ref.param
                )
        checked = await self._check_all([ref for ref in images if ref.url is not None])
        for image, source in checked.values():
            metrics.accepted(source, image.size)
        return _rebuild(messages, listed, {ref: image.data_url for ref, (image, _) in checked.items()})

    async def _check_all(self, refs: list[MediaRef]) -> dict[MediaRef, tuple[CheckedImage, str]]:
        if len(refs) == 1:
            return {refs[0]: await self._located(refs[0])}
        try:
            async with asyncio.TaskGroup() as group:
                tasks = {ref: group.create_task(self._located(ref)) for ref in refs}
        except ExceptionGroup as group:
            refusals = [error for error in group.exceptions if isinstance(error, ImageRefused)]
            if len(refusals) == len(group.exceptions):
                raise refusals[0] from None
            raise
        return {ref: task.result() for ref, task in tasks.items()}

    async def _located(self, ref: MediaRef) -> tuple[CheckedImage, str]:
        try:
            return await self.check_image(ref.url)
        except ImageRefused as refusal:
            raise refusal.at(ref.param) from None

    async def check_image(self, url: Any) -> tuple[CheckedImage, str]:
        """One image URL, checked: (the image, its source: data, http or file)."""
        if not isinstance(url, str):
            raise ImageRefused(UNSUPPORTED_URL, 'image_url must be a URL string or {"url": "..."}')
        head = url[:8].lower()
        if head.startswith("data:"):
            return await self._decode(self._check_data_url, url), "data"
        if head.startswith(("http://", "https://")):
            fetched = await self.fetcher.fetch(url)
            return await self._decode(self._check_bytes, fetched.data), "http"
        if head.startswith("file:"):
            data = await self._decode(read_local_file, url, self.allowed_dirs, self.settings.max_image_bytes)
            return await self._decode(self._check_bytes, data), "file"
        raise ImageRefused(UNSUPPORTED_URL, "image URL must be http://, https://, data: or file://")

    async def _decode(self, function: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._decoders, functools.partial(function, *args))

    def _check_data_url(self, url: str) -> CheckedImage:
        parsed = parse_data_url(url, self.settings.max_image_bytes)
        data = decode_base64(parsed.payload, self.settings.max_image_bytes)
        mime, width, height = inspect_image(data, self.settings.max_image_pixels)
        # Passed on as sent (no copy) unless vLLM's stricter parser would misread its header.
        data_url = url if parsed.canonical else f"data:{mime};base64,{parsed.payload}"
        return CheckedImage(mime, width, height, len(data), data_url)

    def _check_bytes(self, data: bytes | bytearray) -> CheckedImage:
        mime, width, height = inspect_image(data, self.settings.max_image_pixels)
        return CheckedImage(mime, width, height, len(data), to_data_url(mime, data))


def _is_data_url(url: Any) -> bool:
    return isinstance(url, str) and url[:5].lower() == "data:"


def _rebuild(messages: Sequence[Any], listed: dict[int, list[Any]], urls: dict[MediaRef, str]) -> list[Any]:
    """A copy of `messages` with the checked URLs in place; untouched messages are shared."""
    out = list(messages)
    copied: set[int] = set()
    for index, content in listed.items():
        out[index] = {**messages[index], "content": content}
        copied.add(index)
    for ref, data_url in urls.items():
        if ref.url is data_url:
            continue
        if ref.message not in copied:
            out[ref.message] = {**out[ref.message], "content": list(out[ref.message]["content"])}
            copied.add(ref.message)
        content = out[ref.message]["content"]
        value = {**ref.value, "url": data_url} if isinstance(ref.value, Mapping) else data_url
        content[ref.part] = {**content[ref.part], ref.key: value}
    return out
