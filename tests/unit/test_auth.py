"""API keys: key files re-read on rotation (the kubelet's Secret volume layout), never left open."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from model_garden.auth import ApiKeyMiddleware, KeyFileError, KeyRing


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class SecretVolume:
    """A directory laid out as the kubelet mounts a Secret key: `keys` -> `..data/keys`, `..data`
    -> a timestamped directory; an update writes a new directory and swaps `..data` atomically."""

    def __init__(self, root: Path, text: str) -> None:
        self.root = root
        self.version = 0
        self.update(text)
        (root / "keys").symlink_to("..data/keys")

    @property
    def path(self) -> Path:
        return self.root / "keys"

    def update(self, text: str) -> None:
        self.version += 1
        payload = self.root / f"..2026_11_30_{self.version}"
        payload.mkdir()
        (payload / "keys").write_text(text)
        (self.root / "..data_tmp").symlink_to(payload.name)
        os.replace(self.root / "..data_tmp", self.root / "..data")


def test_a_rotated_secret_is_read_after_the_check_interval(tmp_path: Path) -> None:
    volume = SecretVolume(tmp_path, "sk-old\n")
    clock = Clock()
    ring = KeyRing(["sk-flag"], [volume.path], check_interval=2, clock=clock)
    assert ring.current() == (b"sk-flag", b"sk-old")
    volume.update("# rotated\nsk-new\n")
    clock.now = 1.9
    assert ring.current() == (b"sk-flag", b"sk-old")  # not looked at yet
    clock.now = 2.0
    assert ring.current() == (b"sk-flag", b"sk-new")  # fixed keys stay; the old file key is gone


@pytest.mark.parametrize("broken", ["", "# only a comment\n\n", None])
def test_a_broken_update_keeps_the_previous_keys(
    tmp_path: Path, broken: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    volume = SecretVolume(tmp_path, "sk-old\n")
    clock = Clock()
    ring = KeyRing((), [volume.path], check_interval=1, clock=clock)
    if broken is None:
        os.unlink(tmp_path / "..data")  # caught between the kubelet's steps: no file at all
    else:
        volume.update(broken)
    with caplog.at_level(logging.WARNING, logger="model_garden.auth"):
        for clock.now in (1, 2, 3):  # looked at three times, said once
            assert ring.current() == (b"sk-old",)
    assert caplog.text.count("keeping the previous API keys") == 1 and "sk-old" not in caplog.text
    volume.update("sk-fixed\n")  # the next look, once the file is right again, takes it
    clock.now = 4
    assert ring.current() == (b"sk-fixed",)


def test_a_key_file_must_hold_a_key_at_start(tmp_path: Path) -> None:
    empty = tmp_path / "keys"
    empty.write_text("# nothing yet\n")
    with pytest.raises(KeyFileError, match=r"no API key in .*keys"):
        KeyRing((), [empty])
    with pytest.raises(KeyFileError, match="cannot read API key file"):
        KeyRing((), [tmp_path / "missing"])
    assert KeyRing(["sk-flag"], [empty]).current() == (b"sk-flag",)  # a flag key is enough


async def test_the_middleware_follows_a_rotation(tmp_path: Path) -> None:
    volume = SecretVolume(tmp_path, "sk-old\n")
    clock = Clock()
    ring = KeyRing((), [volume.path], check_interval=2, clock=clock)
    app = Starlette(routes=[Route("/v1/models", lambda _: PlainTextResponse("ok"))])
    guarded = ApiKeyMiddleware(app, keys=ring)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded), base_url="http://t") as client:

        async def status(key: str) -> int:
            return (await client.get("/v1/models", headers={"X-API-Key": key})).status_code

        assert (await status("sk-old"), await status("sk-new")) == (200, 401)
        volume.update("sk-new\n")
        clock.now = 2
        assert (await status("sk-old"), await status("sk-new")) == (401, 200)
