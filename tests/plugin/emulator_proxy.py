"""The emulated API server, extended with what `kubectl mg` needs from a real one: authentication,
RBAC denials and the service proxy.

Faithful to kube-apiserver where the plugin can tell:
- every request is authenticated by its bearer token (401 Status otherwise); the test's own
  in-process client (kmock's user agent) acts as the cluster admin, as in the other emulator tests;
- `deny(verb, resource)` makes the authorizer refuse with kube-apiserver's 403 Status and message;
- `/api/v1/namespaces/NS/services/[SCHEME:]NAME[:PORT]/proxy/PATH` needs `create` (POST) or `get`
  (GET) on `services/proxy`, the Service and a port of that name or number, and an endpoint
  (`serve(namespace, service, url)` stands in for ready pods; none: 503 "no endpoints
  available"). The request goes on with the client's `Authorization` header (and impersonation
  headers) STRIPPED, and the answer comes back chunk by chunk as it arrives;
- every proxied exchange is recorded (`proxied`), and `hold()` pauses the next streamed answer after
  some events, so a test can look at a terminal while the answer is unfinished.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web
import attrs

from tests.emulator.cluster import SERVICES, TEST_AGENT, Cluster, running_cluster
from tests.emulator.emulator import ClusterEmulator

TOKEN = "emulator-token"  # what tests.emulator.cluster.write_kubeconfig writes
USER = "tester"
PROXY_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/services/([^/]+)/proxy(/.*)?$")
RESOURCE_PATH = re.compile(
    r"^/(?:api/v1|apis/([^/]+)/[^/]+)(?:/namespaces/([^/]+))?/([^/]+)(?:/([^/]+))?(?:/([^/]+))?"
)
VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
# Not forwarded: hop-by-hop headers, and the client's credentials (kube-apiserver removes them).
DROPPED = {
    "authorization",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


@dataclass
class Gate:
    """Pauses one streamed answer after `after` events until `release` is set (thread-safe)."""

    after: int
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@dataclass
class Proxied:
    """One request that went through the service proxy."""

    method: str
    namespace: str
    service: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int = 0
    response: bytes = b""
    events: int = 0
    completed: bool = False
    client_gone: bool = False
    done: threading.Event = field(default_factory=threading.Event)

    def deltas(self) -> str:
        """The text a streamed chat answer carried (its choices' delta contents), joined."""
        text = []
        for line in self.response.decode(errors="replace").splitlines():
            if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]"):
                event = json.loads(line[5:])
                for choice in event.get("choices") or ():
                    text.append((choice.get("delta") or {}).get("content") or "")
        return "".join(text)


def status_body(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


@attrs.define(kw_only=True)
class ProxyingEmulator(ClusterEmulator):
    tokens: set[str] = attrs.field(factory=lambda: {TOKEN})
    denied: set[tuple[str, str]] = attrs.field(factory=set)
    backends: dict[tuple[str, str], str] = attrs.field(factory=dict)
    proxied: list[Proxied] = attrs.field(factory=list)
    gates: list[Gate] = attrs.field(factory=list)

    # --- test controls ---------------------------------------------------------------------------
    def serve(self, namespace: str, service: str, url: str) -> None:
        """The Service's ready endpoints are `url` (a local runtime or fake model)."""
        self.backends[(namespace, service)] = url.rstrip("/")

    def deny(self, verb: str, resource: str) -> None:
        self.denied.add((verb, resource))

    def hold(self, after: int) -> Gate:
        gate = Gate(after)
        self.gates.append(gate)
        return gate

    def release_all(self) -> None:
        for gate in self.gates:
            gate.release.set()

    def close_watches(self) -> None:
        # Held answers first: a proxied stream waiting on a gate would keep the server from stopping.
        self.release_all()
        super().close_watches()

    # --- HTTP ------------------------------------------------------------------------------------
    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if not raw.headers.get("User-Agent", "").startswith(TEST_AGENT):
            if (refused := self._authenticate(raw)) is not None:
                return refused
            if (refused := self._authorize(raw)) is not None:
                return refused
        if found := PROXY_PATH.match(raw.path):
            return await self._proxy(raw, found.group(1), found.group(2), found.group(3) or "/")
        return await super().__call__(raw)

    def _authenticate(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.Response | None:
        scheme, _, token = raw.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token in self.tokens:
            return None
        return aiohttp.web.json_response(status_body(401, "Unauthorized", "Unauthorized"), status=401)

    def _authorize(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.Response | None:
        found = RESOURCE_PATH.match(raw.path)
        if found is None:
            return None
        group, namespace, plural, name, sub = found.groups()
        if plural == "namespaces" and name and sub:  # /api/v1/namespaces/NS/... without a resource
            return None
        resource = f"{plural}/{sub}" if sub else plural
        verb = VERBS.get(raw.method, "list" if raw.method == "GET" and not name else "get")
        if raw.method == "GET" and raw.query.get("watch") in ("1", "true"):
            verb = "watch"
        if (verb, resource) not in self.denied:
            return None
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        subject = f'{plural} "{name}"' if name else plural
        message = (
            f'{subject} is forbidden: User "{USER}" cannot {verb} resource "{resource}" in API group '
            f'"{group or ""}"{where}'
        )
        body = status_body(403, "Forbidden", message, name=name or "", kind=plural)
        return aiohttp.web.json_response(body, status=403)

    async def _proxy(
        self, raw: aiohttp.web.BaseRequest, namespace: str, ref: str, path: str
    ) -> aiohttp.web.StreamResponse:
        body = await raw.read()
        parts = ref.split(":")
        if len(parts) == 3 or (len(parts) == 2 and parts[0] in ("http", "https")):
            parts = parts[1:]  # a scheme first
        name, port = parts[0], (parts[1] if len(parts) > 1 else "")
        service = self.read(SERVICES, namespace, name)
        if service is None:
            message = f'services "{name}" not found'
            return aiohttp.web.json_response(status_body(404, "NotFound", message), status=404)
        ports = service.get("spec", {}).get("ports") or []
        if port and not any(port in (p.get("name"), str(p.get("port"))) for p in ports):
            message = f'no service port "{port}" found for service "{name}"'
            return aiohttp.web.json_response(status_body(503, "ServiceUnavailable", message), status=503)
        backend = self.backends.get((namespace, name))
        if backend is None:
            message = f'no endpoints available for service "{ref}"'
            return aiohttp.web.json_response(status_body(503, "ServiceUnavailable", message), status=503)
        headers = {
            k: v
            for k, v in raw.headers.items()
            if k.lower() not in DROPPED and not k.lower().startswith("impersonate-")
        }
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = body
        record = Proxied(raw.method, namespace, name, path, dict(headers), parsed)
        self.proxied.append(record)
        url = backend + path + (f"?{raw.query_string}" if raw.query_string else "")
        try:
            return await self._forward(raw, record, url, headers, body)
        finally:
            record.done.set()

    async def _forward(
        self, raw: aiohttp.web.BaseRequest, record: Proxied, url: str, headers: dict[str, str], body: bytes
    ) -> aiohttp.web.StreamResponse:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        async with (
            aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session,
            session.request(raw.method, url, headers=headers, data=body or None) as upstream,
        ):
            record.status = upstream.status
            response = aiohttp.web.StreamResponse(status=upstream.status)
            for key in ("Content-Type", "Content-Encoding", "Cache-Control"):
                if key in upstream.headers:
                    response.headers[key] = upstream.headers[key]
            await response.prepare(raw)
            gate = self.gates.pop(0) if self.gates and _is_stream(upstream) else None
            try:
                async for piece in _pieces(upstream):
                    if gate is not None and record.events >= gate.after and not gate.reached.is_set():
                        gate.reached.set()
                        if not await _wait(gate.release, raw):
                            record.client_gone = True
                            return response
                    await response.write(piece)
                    record.response += piece
                    record.events += piece.count(b"data:")
                    if piece.strip() == b"data: [DONE]":
                        # The answer is whole once its last event is relayed: the client may hang up
                        # on reading it, before the upstream closes its chunked body (the handler is
                        # then cancelled while waiting for that end).
                        record.completed = True
                record.completed = True
                await response.write_eof()
            except (ConnectionResetError, aiohttp.ClientConnectionResetError):
                record.client_gone = True
            except asyncio.CancelledError:
                record.client_gone = True  # aiohttp cancels a handler whose client went away
                raise
            return response


def _is_stream(upstream: aiohttp.ClientResponse) -> bool:
    return upstream.headers.get("Content-Type", "").startswith("text/event-stream")


async def _pieces(upstream: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The body as it arrives; server-sent events one whole event at a time."""
    if not _is_stream(upstream):
        async for chunk in upstream.content.iter_any():
            yield chunk
        return
    buffer = b""
    async for chunk in upstream.content.iter_any():
        buffer += chunk
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            yield event + b"\n\n"
    if buffer:
        yield buffer


async def _wait(release: threading.Event, raw: aiohttp.web.BaseRequest) -> bool:
    """Wait for `release`; False if the client went away first."""
    while not release.is_set():
        if raw.transport is None or raw.transport.is_closing():
            return False
        await asyncio.sleep(0.02)
    return True


def running_proxy_cluster(tmp: Path) -> contextlib.AbstractAsyncContextManager[Cluster]:
    """tests.emulator.cluster.running_cluster, with the proxying emulator."""
    return running_cluster(tmp, ProxyingEmulator)
