"""Client side of images: turn what a person types (a file path or a URL) into an image URL.

Local files are sent as base64 data URLs, so the server never reads the client's disk. The file must
exist, be a PNG, JPEG, WebP or GIF (checked from its first bytes, not its name) and be no larger
than `max_bytes`.
"""

from __future__ import annotations

import base64
from pathlib import Path

from model_garden_common.constants import DEFAULT_MAX_IMAGE_BYTES

REMOTE_PREFIXES = ("http://", "https://", "data:")


class ImageRefError(ValueError):
    """An image reference that cannot be sent, with a one-line reason."""


def sniff_image_type(head: bytes) -> str | None:
    """The MIME type of an image from its first bytes, or None if it is not one we accept."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_ref_to_url(ref: str, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> str:
    """`ref` unchanged when it is an http(s) or data URL; a local file as a data URL."""
    if ref.startswith(REMOTE_PREFIXES):
        return ref
    path = Path(ref).expanduser()
    if not path.is_file():
        raise ImageRefError(f"image file not found: {ref}")
    size = path.stat().st_size
    if size > max_bytes:
        raise ImageRefError(f"image file {ref} is {size:,} bytes; the limit is {max_bytes:,} bytes")
    data = path.read_bytes()
    mime = sniff_image_type(data[:16])
    if mime is None:
        raise ImageRefError(f"{ref} is not a PNG, JPEG, WebP or GIF image")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
