"""API keys: one or more keys, accepted as `Authorization: Bearer KEY` or `X-API-Key: KEY`.

The Kubernetes API server's service proxy strips `Authorization` after authenticating the user,
so clients going through it (`kubectl mg`) send `X-API-Key`. Keys are compared in constant time and
never logged. Probe and scrape routes stay open unless configured otherwise. The management routes
(load, unload) can require a separate admin key.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from model_garden.constants import HEALTH_PATH, LIVENESS_PATH, MANAGEMENT_PREFIX, METRICS_PATH
from model_garden.observability import AUTH_FAILURES

ENV_API_KEYS = "MODEL_GARDEN_API_KEYS"
ENV_ADMIN_API_KEYS = "MODEL_GARDEN_ADMIN_API_KEYS"
DEFAULT_OPEN_PATHS = (HEALTH_PATH, LIVENESS_PATH, METRICS_PATH)
ADMIN_PATHS = (f"{MANAGEMENT_PREFIX}/load", f"{MANAGEMENT_PREFIX}/unload")


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
        keys: Sequence[str],
        admin_keys: Sequence[str] = (),
        open_paths: Sequence[str] = DEFAULT_OPEN_PATHS,
    ) -> None:
        self.app = app
        self.keys = [key.encode() for key in keys]
        self.admin_keys = [key.encode() for key in admin_keys]
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        admin = scope["path"] in ADMIN_PATHS and self.admin_keys
        required = self.admin_keys if admin else self.keys
        if not required:
            await self.app(scope, receive, send)
            return
        presented = _presented_key(scope["headers"])
        if presented is None:
            AUTH_FAILURES.labels("missing").inc()
            await self._refuse(send, "Missing API key: send `Authorization: Bearer KEY` or `X-API-Key: KEY`.")
            return
        if not _matches(presented, required):
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
