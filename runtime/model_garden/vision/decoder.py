"""Image bytes in, checked image out: data URLs, local files, and the PNG/JPEG/WebP/GIF check.

All in memory. The order of checks keeps the work an attacker can cause small: lengths before
decoding base64, the header's dimensions before decoding pixels, and only Pillow's PNG, JPEG,
WebP and GIF decoders are ever tried.
"""

from __future__ import annotations

import base64
import binascii
import errno
import io
import os
import stat
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from PIL import Image

from model_garden.image_refs import sniff_image_type
from model_garden_common.image_errors import (
    FILE_NOT_FOUND,
    IMAGE_TOO_LARGE,
    INVALID_DATA_URL,
    LOCAL_FILES_DISABLED,
    NOT_AN_IMAGE,
    PATH_NOT_ALLOWED,
    TOO_MANY_PIXELS,
    UNSUPPORTED_URL,
    ImageRefused,
)

# Pillow format name -> MIME type: the only formats accepted, and the only decoders tried.
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


@dataclass(frozen=True)
class CheckedImage:
    """An image that passed every check: its file bytes (or the client's own data URL)."""

    mime: str
    width: int
    height: int
    size: int  # bytes of the image file
    data_url: str


def base64_length(size: int) -> int:
    """Length of the base64 text of `size` bytes (padded)."""
    return 4 * ((size + 2) // 3)


@dataclass(frozen=True)
class DataUrl:
    media_type: str
    payload: str  # the base64 text
    canonical: bool  # `data:<type>;base64,` exactly as vLLM's own parser expects it


def parse_data_url(url: str, max_bytes: int) -> DataUrl:
    """Split a `data:image/...;base64,` URL, refusing oversized payloads before any decoding."""
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise ImageRefused(INVALID_DATA_URL, "data URL has no ',' before its data")
    params = [param.strip() for param in header.split(";")]
    media_type = params[0].lower()
    if not params[-1].lower() == "base64" or len(params) < 2:
        raise ImageRefused(INVALID_DATA_URL, "only base64 data URLs (data:image/png;base64,...) are accepted")
    if not media_type.startswith("image/"):
        raise ImageRefused(
            INVALID_DATA_URL, f"data URL media type {media_type or 'text/plain'!r} is not image/..."
        )
    if len(payload) > base64_length(max_bytes):
        raise ImageRefused(
            IMAGE_TOO_LARGE,
            f"data URL carries {len(payload):,} base64 characters, more than the "
            f"{base64_length(max_bytes):,} that --max-image-bytes {max_bytes} allows",
        )
    canonical = header == f"{params[0]};base64"
    return DataUrl(media_type, payload, canonical)


def decode_base64(payload: str, max_bytes: int) -> bytes:
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageRefused(INVALID_DATA_URL, "data URL's base64 is broken") from None
    check_size(len(data), max_bytes)
    return data


def check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise ImageRefused(
            IMAGE_TOO_LARGE, f"image is {size:,} bytes; --max-image-bytes allows {max_bytes:,}"
        )


def inspect_image(data: bytes, max_pixels: int) -> tuple[str, int, int]:
    """(MIME type, width, height) of a real PNG/JPEG/WebP/GIF within the pixel limit, fully decoded
    once to prove it; ImageRefused otherwise. Blocking: run it in a worker thread."""
    if sniff_image_type(data[:16]) is None:
        raise ImageRefused(NOT_AN_IMAGE, "bytes are not a PNG, JPEG, WebP or GIF image")
    try:
        with Image.open(io.BytesIO(data), formats=tuple(FORMATS)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ImageRefused(
                    TOO_MANY_PIXELS,
                    f"image is {width}x{height} = {width * height:,} pixels; "
                    f"--max-image-pixels allows {max_pixels:,}",
                )
            mime = FORMATS[image.format or ""]
            image.load()  # the first frame, fully: truncated or corrupt data fails here
    except Image.DecompressionBombError as error:
        raise ImageRefused(TOO_MANY_PIXELS, f"image declares too many pixels ({error})") from None
    except ImageRefused:
        raise
    except Exception as error:  # noqa: BLE001 - any decoder failure is the client's bad image
        raise ImageRefused(NOT_AN_IMAGE, f"image cannot be decoded: {error}") from None
    return mime, width, height


def to_data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


# --- Local files -------------------------------------------------------------------------------
def local_path(url: str) -> PurePosixPath:
    """The absolute path a `file://` URL names; ImageRefused if it is not a plain local path."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ImageRefused(UNSUPPORTED_URL, f"file URL names a remote host ({parts.netloc!r})")
    if parts.query or parts.fragment:
        raise ImageRefused(UNSUPPORTED_URL, "file URL has a query or fragment")
    path = unquote(parts.path)
    if "\x00" in path or not path.startswith("/"):
        raise ImageRefused(UNSUPPORTED_URL, "file URL must name an absolute path")
    pure = PurePosixPath(path)
    if ".." in pure.parts:
        raise ImageRefused(PATH_NOT_ALLOWED, "file URL may not contain '..'")
    return pure


def read_local_file(url: str, allowed_dirs: tuple[str, ...] | None, max_bytes: int) -> bytes:
    """Read a file named by a `file://` URL if it lies inside the allowed directory.

    `allowed_dirs` are the allowed directory as configured and as its real path. The path is
    opened one component at a time from the allowed directory with O_NOFOLLOW, so no symlink is
    followed anywhere under it (nor can one be swapped in between a check and the open), and only
    a regular file is read, at most `max_bytes` + 1 bytes of it. Blocking: run it in a thread.
    """
    if not allowed_dirs:
        raise ImageRefused(
            LOCAL_FILES_DISABLED, "file:// image URLs are off (the server has no --allowed-local-image-dir)"
        )
    path = local_path(url)
    relative: tuple[str, ...] | None = None
    for allowed in allowed_dirs:
        root = PurePosixPath(allowed).parts
        if path.parts[: len(root)] == root and len(path.parts) > len(root):
            relative = path.parts[len(root) :]
            break
    if relative is None:
        raise ImageRefused(PATH_NOT_ALLOWED, f"{path} is not inside --allowed-local-image-dir")
    return _read_beneath(allowed_dirs[-1], relative, max_bytes, str(path))


def _read_beneath(root: str, relative: tuple[str, ...], max_bytes: int, shown: str) -> bytes:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(root, flags | os.O_DIRECTORY)
    try:
        for index, name in enumerate(relative):
            last = index == len(relative) - 1
            try:
                # O_NONBLOCK: opening a FIFO must not hang the request.
                next_fd = os.open(name, flags | (os.O_NONBLOCK if last else os.O_DIRECTORY), dir_fd=fd)
            except OSError as error:
                raise _file_error(error, shown, _is_symlink(name, fd)) from None
            os.close(fd)
            fd = next_fd
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ImageRefused(PATH_NOT_ALLOWED, f"{shown} is not a regular file")
        check_size(info.st_size, max_bytes)
        chunks = []
        remaining = max_bytes + 1
        while remaining > 0 and (chunk := os.read(fd, min(remaining, 1 << 20))):
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        check_size(len(data), max_bytes)
        return data
    finally:
        os.close(fd)


def _is_symlink(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _file_error(error: OSError, shown: str, symlink: bool) -> ImageRefused:
    if symlink:
        return ImageRefused(PATH_NOT_ALLOWED, f"{shown} goes through a symlink (symlinks are not followed)")
    if error.errno in (errno.ENOENT, errno.ENOTDIR):
        return ImageRefused(FILE_NOT_FOUND, f"{shown} does not exist")
    return ImageRefused(PATH_NOT_ALLOWED, f"{shown} cannot be opened ({os.strerror(error.errno or 0)})")
