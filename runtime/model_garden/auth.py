"""API keys: one or more keys, accepted as `Authorization: Bearer KEY` or `X-API-Key: KEY`.

The Kubernetes API server's service proxy strips `Authorization` after authenticating the user,
so clients going through it (`kubectl mg`) send `X-API-Key`. Keys are compared in constant time and
never logged. Probe and scrape routes stay open unless configured otherwise. The management routes
(load, unload) can require a separate admin key. Key files are re-read when they change, so a
rotated Secret takes effect without restarting the pod.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from model_garden.observability import AUTH_FAILURES
from model_garden_common.constants import HEALTH_PATH, LIVENESS_PATH, MANAGEMENT_PREFIX, METRICS_PATH

ENV_API_KEYS = "MODEL_GARDEN_API_KEYS"
ENV_ADMIN_API_KEYS = "MODEL_GARDEN_ADMIN_API_KEYS"
DEFAULT_OPEN_PATHS = (HEALTH_PATH, LIVENESS_PATH, METRICS_PATH)
ADMIN_PATHS = (f"{MANAGEMENT_PREFIX}/load", f"{MANAGEMENT_PREFIX}/unload")


# How often a request may look at the key files' metadata (one stat per file): a rotated key is
# accepted, and the old one refused, within this long of the file changing.
KEY_FILE_CHECK_SECONDS = 2.0

log = logging.getLogger(__name__)


class KeyFileError(ValueError):
    """A key file that cannot be read, named without its contents."""


def read_keys(
    values: Iterable[str] = (), files: Iterable[str | Path] = (), env_var: str | None = None
) -> tuple[str, ...]:
    """Keys from flags, files (one per line; blank lines and `#` comments skipped) and an environment
    variable (comma-separated), de-duplicated, order kept."""
    keys: list[str] = [value.strip() for value in values]
    for file in files:
        try:
            lines = Path(file).read_text().splitlines()
        except OSError as error:
            raise KeyFileError(f"cannot read API key file {file}: {error.strerror}") from None
        keys.extend(line.strip() for line in lines if not line.lstrip().startswith("#"))
    if env_var:
        keys.extend(os.environ.get(env_var, "").split(","))
    return tuple(dict.fromkeys(key for key in keys if key))


_FileSignature = tuple[tuple[int, int, int] | None, ...]


class KeyRing:
    """The keys one route group accepts: fixed ones (flags, the environment) and those in key files.

    The files are re-read when their inode, size or modification time changes (looked at no more
    than every `check_interval` seconds, on a request's way in). The kubelet updates a mounted
    Secret by swapping a symlink, which changes the inode. A re-read that fails, or that finds no
    key at all, keeps the previous keys: a file caught mid-update never leaves the API open.
    """

    def __init__(
        self,
        fixed: Iterable[str] = (),
        files: Iterable[str | Path] = (),
        *,
        check_interval: float = KEY_FILE_CHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fixed = tuple(fixed)
        self._files = tuple(Path(file) for file in files)
        self._check_interval = check_interval
        self._clock = clock
        self._signature = self._stat()
        self._refused: _FileSignature | None = None  # a version already found broken
        keys = read_keys(self._fixed, self._files)  # a KeyFileError at start-up stops the server
        if self._files and not keys:
            # An empty file would otherwise mean either an open API or every request refused.
            names = ", ".join(str(file) for file in self._files)
            raise KeyFileError(f"no API key in {names} (one key per line; # starts a comment)")
        self._keys = self._encode(keys)
        self._next_check = clock() + check_interval

    def __bool__(self) -> bool:
        """Whether any key is required (key files always count: they may only be empty for now)."""
        return bool(self._keys) or bool(self._files)

    def current(self) -> Sequence[bytes]:
        """The keys now; re-reads the files first if it is time to look and they changed."""
        if self._files:
            now = self._clock()
            if now >= self._next_check:
                self._next_check = now + self._check_interval
                signature = self._stat()
                if signature not in (self._signature, self._refused):
                    self._reload(signature)
        return self._keys

    def _reload(self, signature: _FileSignature) -> None:
        names = ", ".join(str(file) for file in self._files)
        try:
            keys = read_keys(self._fixed, self._files)
        except KeyFileError as error:
            keys = ()
            log.warning("%s; keeping the previous API keys", error)
        else:
            if not keys:
                log.warning("no API key left in %s; keeping the previous API keys", names)
        if not keys:
            self._refused = signature  # said once; the file's next version is looked at again
            return
        self._keys = self._encode(keys)
        self._signature = signature
        log.info("API keys re-read from %s: %d key(s)", names, len(keys))

    def _stat(self) -> _FileSignature:
        signature = []
        for file in self._files:
            try:
                stat = file.stat()  # follows the kubelet's symlinks to the current file
            except OSError:
                signature.append(None)
            else:
                signature.append((stat.st_ino, stat.st_size, stat.st_mtime_ns))
        return tuple(signature)

    @staticmethod
    def _encode(keys: Iterable[str]) -> tuple[bytes, ...]:
        return tuple(key.encode() for key in keys)


def _matches(candidate: bytes, keys: Sequence[bytes]) -> bool:
    # Compare against every key, without stopping at the first match: timing reveals nothing.
    found = False
    for key in keys:
        found |= hmac.compare_digest(candidate, key)
    return found


def _presented_key(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    bearer = api_key = None
    for name, value in headers:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            bearer = value[7:].strip()
        elif name == b"x-api-key":
            api_key = value.strip()
    return api_key if api_key is not None else bearer


def _unauthorized_body(message: str) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": "AuthenticationError", "param": None, "code": 401}}
    ).encode()


class ApiKeyMiddleware:
    """Refuses requests without a valid key with 401 and OpenAI's error body."""

    def __init__(
        self,
        app: Any,
        keys: KeyRing | Sequence[str],
        admin_keys: KeyRing | Sequence[str] = (),
        open_paths: Sequence[str] = DEFAULT_OPEN_PATHS,
    ) -> None:
        self.app = app
        self.keys = keys if isinstance(keys, KeyRing) else KeyRing(keys)
        self.admin_keys = admin_keys if isinstance(admin_keys, KeyRing) else KeyRing(admin_keys)
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        admin = scope["path"] in ADMIN_PATHS and bool(self.admin_keys)
        ring = self.admin_keys if admin else self.keys
        if not ring:
            await self.app(scope, receive, send)
            return
        presented = _presented_key(scope["headers"])
        if presented is None:
            AUTH_FAILURES.labels("missing").inc()
            await self._refuse(send, "Missing API key: send `Authorization: Bearer KEY` or `X-API-Key: KEY`.")
            return
        if not _matches(presented, ring.current()):
            AUTH_FAILURES.labels("admin" if admin else "invalid").inc()
            await self._refuse(
                send, "Invalid API key." if not admin else "This route needs the admin API key."
            )
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(send: Any, message: str) -> None:
        body = _unauthorized_body(message)
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
            }
        )
        await send({"type": "http.response.body", "body": body})
