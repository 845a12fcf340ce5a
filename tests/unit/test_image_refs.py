"""Turning what a person types into an image URL."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from model_garden.image_refs import ImageRefError, image_ref_to_url, sniff_image_type

PNG_1x1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.mark.parametrize("url", ["http://example.com/a.png", "https://x/y.jpg", "data:image/png;base64,AAAA"])
def test_urls_pass_unchanged(url: str) -> None:
    assert image_ref_to_url(url) == url


def test_a_file_becomes_a_data_url(tmp_path: Path) -> None:
    path = tmp_path / "cat.bin"  # the type comes from the bytes, not the name
    path.write_bytes(PNG_1x1)
    url = image_ref_to_url(str(path))
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == PNG_1x1


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageRefError, match="not found"):
        image_ref_to_url(str(tmp_path / "nope.png"))


def test_too_large_file(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(PNG_1x1 + b"\0" * 100)
    with pytest.raises(ImageRefError, match="limit is 50 bytes"):
        image_ref_to_url(str(path), max_bytes=50)


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(ImageRefError, match="not a PNG"):
        image_ref_to_url(str(path))


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (PNG_1x1[:16], "image/png"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 12, "image/jpeg"),
        (b"GIF89a" + b"\0" * 10, "image/gif"),
        (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"),
        (b"%PDF-1.7", None),
    ],
)
def test_sniff(head: bytes, mime: str | None) -> None:
    assert sniff_image_type(head) == mime
