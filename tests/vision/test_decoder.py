"""Data URLs, the image check and local files: refused early, with the limit named, nothing more done."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from model_garden.vision import decoder
from model_garden.vision.decoder import (
    base64_length,
    decode_base64,
    inspect_image,
    parse_data_url,
    read_local_file,
)
from model_garden.vision.pipeline import allowed_dirs
from model_garden_common import image_errors as errors
from model_garden_common.image_errors import ImageRefused
from tests.vision.images import data_url, make_image, png_declaring

MAX = 1_000_000
PIXELS = 4096 * 4096


def refused(reason: str, call: object, *args: object) -> ImageRefused:
    with pytest.raises(ImageRefused) as caught:
        call(*args)  # type: ignore[operator]
    assert caught.value.reason == reason, caught.value.message
    return caught.value


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_every_accepted_format(fmt: str) -> None:
    data = make_image(30, 20, fmt)
    assert inspect_image(data, PIXELS)[1:] == (30, 20)


def test_data_url_round_trip() -> None:
    url = data_url(make_image())
    parsed = parse_data_url(url, MAX)
    assert parsed.media_type == "image/png" and parsed.canonical
    assert decode_base64(parsed.payload, MAX) == make_image()
    assert not parse_data_url("data:IMAGE/PNG;charset=x;BASE64," + parsed.payload, MAX).canonical


@pytest.mark.parametrize(
    "url",
    [
        "data:image/png;base64",  # no comma
        "data:image/png,iVBORw0KGgo=",  # not base64
        "data:text/plain;base64,aGVsbG8=",
        "data:;base64,aGVsbG8=",
        "data:application/octet-stream;base64,aGVsbG8=",
    ],
)
def test_malformed_data_urls(url: str) -> None:
    refused(errors.INVALID_DATA_URL, parse_data_url, url, MAX)


@pytest.mark.parametrize("payload", ["@@@@", "iVBORw0KGgo", "iVBO Rw0K", "iVBORw0KGgo=\n"])
def test_broken_base64(payload: str) -> None:
    refused(errors.INVALID_DATA_URL, decode_base64, payload, MAX)


def test_oversized_data_url_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*_: object, **__: object) -> bytes:
        raise AssertionError("decoded an oversized payload")

    monkeypatch.setattr(decoder.base64, "b64decode", never)
    url = "data:image/png;base64," + "A" * (base64_length(MAX) + 4)
    error = refused(errors.IMAGE_TOO_LARGE, parse_data_url, url, MAX)
    assert "--max-image-bytes" in error.message


def test_decoded_size_is_checked_exactly() -> None:
    payload = base64.b64encode(b"x" * (MAX + 1)).decode()
    assert len(payload) <= base64_length(MAX)  # the length check lets it through (padding) ...
    parse_data_url("data:image/png;base64," + payload, MAX)
    refused(errors.IMAGE_TOO_LARGE, decode_base64, payload, MAX)  # ... the decoded size does not
    assert len(decode_base64(base64.b64encode(b"x" * MAX).decode(), MAX)) == MAX


@pytest.mark.parametrize(
    "data",
    [
        b"GIF89a is what a text file might start with",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"BM" + b"\0" * 100,  # BMP: a real image, not an accepted format
        b"%PDF-1.7",
        b"",
    ],
)
def test_bytes_that_are_not_an_accepted_image(data: bytes) -> None:
    refused(errors.NOT_AN_IMAGE, inspect_image, data, PIXELS)


def test_truncated_image_is_not_an_image() -> None:
    data = make_image(300, 300, "PNG")
    refused(errors.NOT_AN_IMAGE, inspect_image, data[: len(data) // 2], PIXELS)


def test_decompression_bomb_past_pillows_guard() -> None:
    bomb = png_declaring(20000, 20000)
    assert len(bomb) < 2000
    error = refused(errors.TOO_MANY_PIXELS, inspect_image, bomb, PIXELS)
    assert "pixels" in error.message


def test_pixel_limit_is_checked_before_decoding() -> None:
    # 5000x5000 is under Pillow's own guard; its data is truncated, so decoding would fail with
    # not_an_image: too_many_pixels proves the header was read and nothing decoded.
    error = refused(errors.TOO_MANY_PIXELS, inspect_image, png_declaring(5000, 5000), PIXELS)
    assert "5000x5000" in error.message and "--max-image-pixels" in error.message


# --- Local files ------------------------------------------------------------------------------------
@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    allowed = tmp_path / "allowed"
    (allowed / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    image = make_image()
    (allowed / "ok.png").write_bytes(image)
    (allowed / "sub" / "deep.png").write_bytes(image)
    (outside / "secret.png").write_bytes(image)
    (allowed / "link-out.png").symlink_to(outside / "secret.png")
    (allowed / "dir-out").symlink_to(outside)
    (allowed / "link-in.png").symlink_to(allowed / "ok.png")
    os.mkfifo(allowed / "fifo.png")
    (allowed / "big.png").write_bytes(image + b"\0" * MAX)
    return {"allowed": allowed, "outside": outside}


def read(layout: dict[str, Path], url: str) -> bytes:
    return read_local_file(url, allowed_dirs(str(layout["allowed"])), MAX)


def test_files_inside_the_allowed_directory(layout: dict[str, Path]) -> None:
    allowed = layout["allowed"]
    assert read(layout, f"file://{allowed}/ok.png") == make_image()
    assert read(layout, f"file://localhost{allowed}/sub/deep.png") == make_image()
    assert read(layout, f"file://{allowed}/sub/%64eep.png") == make_image()


def test_files_are_off_without_an_allowed_directory(layout: dict[str, Path]) -> None:
    refused(errors.LOCAL_FILES_DISABLED, read_local_file, f"file://{layout['allowed']}/ok.png", None, MAX)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("link-out.png", errors.PATH_NOT_ALLOWED),  # symlink to a file outside
        ("dir-out/secret.png", errors.PATH_NOT_ALLOWED),  # symlinked directory outside
        ("link-in.png", errors.PATH_NOT_ALLOWED),  # no symlink is followed, even inside
        ("fifo.png", errors.PATH_NOT_ALLOWED),  # not a regular file (and no hang)
        ("sub", errors.PATH_NOT_ALLOWED),
        ("missing.png", errors.FILE_NOT_FOUND),
        ("ok.png/x", errors.FILE_NOT_FOUND),
        ("big.png", errors.IMAGE_TOO_LARGE),
    ],
)
def test_refused_files_inside(layout: dict[str, Path], name: str, reason: str) -> None:
    refused(reason, read, layout, f"file://{layout['allowed']}/{name}")


@pytest.mark.parametrize(
    "path",
    [
        "{allowed}/../outside/secret.png",
        "{allowed}/sub/../../outside/secret.png",
        "{allowed}/%2e%2e/outside/secret.png",
        "{allowed}/sub/%2E%2E/%2E%2E/outside/secret.png",
        "{outside}/secret.png",
        "/etc/passwd",
        "{allowed}",
        "{allowed}-sibling/x.png",
    ],
)
def test_paths_outside_are_refused_without_opening_anything(
    layout: dict[str, Path], path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[object] = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    url = "file://" + path.format(allowed=layout["allowed"], outside=layout["outside"])
    refused(errors.PATH_NOT_ALLOWED, read, layout, url)
    assert opened == []


@pytest.mark.parametrize("url", ["file://otherhost/etc/passwd", "file:relative.png", "file:///x.png?q=1"])
def test_file_urls_that_name_no_local_absolute_path(layout: dict[str, Path], url: str) -> None:
    refused(errors.UNSUPPORTED_URL, read, layout, url)


def test_allowed_directory_through_a_symlink_is_resolved(layout: dict[str, Path], tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(layout["allowed"])
    dirs = allowed_dirs(str(alias))
    assert dirs == (str(alias), str(layout["allowed"].resolve()))
    assert read_local_file(f"file://{alias}/ok.png", dirs, MAX) == make_image()
    assert read_local_file(f"file://{layout['allowed']}/ok.png", dirs, MAX) == make_image()
