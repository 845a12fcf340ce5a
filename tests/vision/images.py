"""Test images: real ones in every accepted format, and hostile ones (bombs, truncated, fakes)."""

from __future__ import annotations

import base64
import io
import random
import struct
import zlib

from PIL import Image

MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}


def make_image(width: int = 64, height: int = 48, fmt: str = "PNG", seed: int = 0) -> bytes:
    """A small real image with some structure (a gradient plus a colored square)."""
    image = Image.new("RGB", (width, height), (seed % 256, 80, 160))
    for x in range(0, width, max(1, width // 8)):
        for y in range(height):
            image.putpixel((x, y), (255, (x * 7) % 256, (y * 5) % 256))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image_data_url(width: int = 64, height: int = 48, fmt: str = "PNG", seed: int = 0) -> str:
    return data_url(make_image(width, height, fmt, seed), MIME[fmt])


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header declares `width` x `height` (a decompression bomb:
    a few hundred bytes that would decode to width x height pixels)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    # Rows of zeros compress to almost nothing: the first 64 rows only.
    rows = zlib.compress(b"\0" * ((width + 1) * 64), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def noisy_jpeg(width: int, height: int, max_bytes: int, seed: int = 0) -> bytes:
    """A JPEG of `width` x `height` as close to (and not over) `max_bytes` as a quality search gets:
    the largest image the limits allow, both in bytes and in pixels."""
    rng = random.Random(seed)
    noise = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    best = b""
    low, high = 1, 95
    while low <= high:
        quality = (low + high) // 2
        buffer = io.BytesIO()
        noise.save(buffer, "JPEG", quality=quality)
        size = buffer.tell()
        if size <= max_bytes:
            best, low = buffer.getvalue(), quality + 1
        else:
            high = quality - 1
    return best
