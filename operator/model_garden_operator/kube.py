"""A small Kubernetes API client and the idempotent `apply` the reconciler writes children with.

Why plain aiohttp rather than the official `kubernetes` client or `kubernetes_asyncio`: Kopf already
runs on aiohttp in the same event loop, so this adds no dependency, no thread pool (the sync client
would need a thread per call, and hundreds of models reconcile at once) and little memory (the
official clients load hundreds of generated model classes). We need a few verbs on a few resources
and answers as plain dicts, which is what the pure builders produce and compare against anyway.

Credentials come from the same `kopf.ConnectionInfo` Kopf logs in with (service account in a pod,
else the kubeconfig), so the operator and its client always talk to the same cluster as the same
user.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import aiohttp
import kopf

from model_garden_common import constants as C

logger = logging.getLogger(__name__)

USER_AGENT: Final = "model-garden-operator"
# Statuses worth another try: conflicts, throttling, the API server or its etcd having a moment.
RETRYABLE: Final = frozenset({409, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Kind:
    """Where a namespaced resource lives in the API: `api/v1` + `services`."""

    prefix: str
    plural: str

    def url(self, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
        parts = [self.prefix, "namespaces", namespace, self.plural]
        if name is not None:
            parts.append(name)
        if subresource is not None:
            parts.append(subresource)
        return "/" + "/".join(parts)


DEPLOYMENTS: Final = Kind("apis/apps/v1", "deployments")
SERVICES: Final = Kind("api/v1", "services")
SECRETS: Final = Kind("api/v1", "secrets")
NETWORK_POLICIES: Final = Kind("apis/networking.k8s.io/v1", "networkpolicies")
INFERENCE_MODELS: Final = Kind(f"apis/{C.API_GROUP}/{C.API_VERSION}", C.PLURAL)


class ApiError(Exception):
    """The API server said no, or did not answer, after the retries."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status


class AlreadyExists(ApiError):
    pass


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: 0.1 s, 0.2 s, 0.4 s, ... at most `cap`, `attempts` tries."""

    attempts: int = 6
    base: float = 0.1
    cap: float = 3.0

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.base * 2**attempt) * random.uniform(0.5, 1.0)


class KubeClient:
    """GET, POST, PATCH against one API server, retrying what a retry can fix."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        server: str,
        *,
        auth: Mapping[str, str] | None = None,
        relogin: Callable[[], kopf.ConnectionInfo] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._session = session
        self._server = server.rstrip("/")
        self._auth = dict(auth or {})
        self._relogin = relogin
        self._backoff = backoff or Backoff()

    @classmethod
    def connect(
        cls,
        info: kopf.ConnectionInfo,
        *,
        relogin: Callable[[], kopf.ConnectionInfo] | None = None,
        timeout: float = 30.0,
        limit: int = 32,
    ) -> KubeClient:
        """A client for `info`; on 401 it asks `relogin` for fresh credentials (tokens rotate)."""
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=limit, ssl=info.as_ssl_context()),
            headers={"User-Agent": USER_AGENT},
            timeout=aiohttp.ClientTimeout(total=timeout),
            trust_env=info.trust_env,
        )
        # Basic auth or a bearer token, as Kopf renders them.
        return cls(session, info.server, auth=info.as_http_headers(), relogin=relogin)

    async def close(self) -> None:
        await self._session.close()

    async def _request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> dict[str, Any] | None:
        """The decoded answer; None for 404. Raises ApiError once retries are spent."""
        url = self._server + path
        last = ApiError(0, "no attempt made")
        relogged = False
        for attempt in range(self._backoff.attempts):
            if attempt:
                await asyncio.sleep(self._backoff.delay(attempt - 1))
            try:
                headers = {"Content-Type": content_type, **self._auth}
                async with self._session.request(method, url, json=body, headers=headers) as response:
                    if response.status == 404:
                        return None
                    if response.status == 401 and self._relogin is not None and not relogged:
                        # A rotated service-account token or an expired exec token: log in again.
                        self._auth = self._relogin().as_http_headers()
                        relogged = True
                        continue
                    payload = await response.json(content_type=None)
                    if response.status < 400:
                        return payload  # type: ignore[no-any-return]
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = ApiError(0, f"{method} {path}: {exc!r}")
                logger.debug("retrying %s %s after %r", method, path, exc)
                continue
            message = payload.get("message", "") if isinstance(payload, dict) else str(payload)
            reason = payload.get("reason", "") if isinstance(payload, dict) else ""
            if method == "POST" and response.status == 409 and reason == "AlreadyExists":
                raise AlreadyExists(409, message)
            last = ApiError(response.status, f"{method} {path}: {message}")
            if response.status not in RETRYABLE:
                raise last
            logger.debug("retrying %s %s after HTTP %s", method, path, response.status)
        raise last

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._request("GET", kind.url(namespace, name))

    async def create(self, kind: Kind, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        created = await self._request("POST", kind.url(namespace), dict(body))
        if created is None:  # the namespace is gone
            raise ApiError(404, f"cannot create in namespace {namespace}")
        return created

    async def patch(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any] | None:
        """JSON merge patch; None when the object is gone."""
        url = kind.url(namespace, name, subresource)
        return await self._request("PATCH", url, dict(patch), "application/merge-patch+json")


def _same_scalar(desired: Any, actual: Any) -> bool:
    # The API server returns quantities as strings ("1" for a GPU limit rendered as 1).
    if isinstance(desired, (int, float)) and not isinstance(desired, bool) and isinstance(actual, str):
        return str(desired) == actual
    return bool(desired == actual)


def covers(actual: Any, desired: Any) -> bool:
    """Whether `actual` already holds every field of `desired` (fields the server added are fine)."""
    if isinstance(desired, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and covers(actual[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(desired)
            and all(covers(a, d) for a, d in zip(actual, desired, strict=True))
        )
    return _same_scalar(desired, actual)


Action = Literal["created", "patched", "unchanged"]


@dataclass(frozen=True)
class Applied:
    obj: dict[str, Any]
    action: Action


def _owned_fields(desired: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a rendered child the operator owns and compares: labels, annotations, owner, spec."""
    meta = desired.get("metadata") or {}
    owned: dict[str, Any] = {
        "metadata": {k: meta[k] for k in ("labels", "annotations", "ownerReferences") if k in meta}
    }
    for key, value in desired.items():
        if key not in ("apiVersion", "kind", "metadata", "status"):
            owned[key] = value
    return owned


async def apply(client: KubeClient, kind: Kind, desired: Mapping[str, Any], *, attempts: int = 5) -> Applied:
    """Make the object match `desired`: create it if missing, merge-patch it if it differs, else no write.

    A merge patch replaces the lists we render (containers, ports) whole, which undoes hand edits
    inside them, and leaves alone map keys others added that we never set.
    """
    meta = desired["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    owned = _owned_fields(desired)
    for _ in range(attempts):
        current = await client.get(kind, namespace, name)
        if current is None:
            try:
                return Applied(await client.create(kind, namespace, desired), "created")
            except AlreadyExists:
                continue  # created meanwhile (a restart mid-reconcile, a racing event): compare it
        if covers(current, owned):
            return Applied(current, "unchanged")
        patched = await client.patch(kind, namespace, name, owned)
        if patched is not None:
            return Applied(patched, "patched")
    raise ApiError(409, f"{kind.plural}/{name} in {namespace} kept changing under the operator")
