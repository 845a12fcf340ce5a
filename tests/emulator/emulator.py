"""kmock's in-memory Kubernetes API, made faithful where its gaps would hide the operator's behaviour.

kmock 0.8 (by Kopf's author) serves objects over HTTP with discovery, list and watch, but stores
writes as plain dict merges. This subclass keeps kmock's server, request parsing, discovery and
object store (`kmock.objects`, with every version in `.history`) and takes over the object verbs,
following the Kubernetes API conventions:

- server metadata on create (uid, resourceVersion bumped on every real change, generation bumped
  on changes outside metadata/status, creationTimestamp, namespace from the URL, generateName),
  201 on create, 409 AlreadyExists, no-op writes that change nothing (no event, no new version);
- a real `/status` subresource (status writes touch only status; main-resource writes ignore
  status where the resource has the subresource) and `/scale`;
- CRD structural schema: defaults applied and undeclared fields pruned (status included);
- merge patch (RFC 7386) and JSON patch (its `test` failing with 422, as Kopf expects); PUT;
- label and field selectors on list and watch; watch from a resourceVersion replays what came
  after it; objects moving out of a selector are sent as DELETED;
- finalizers and deletionTimestamp; garbage collection of dependents whose owners are gone;
- injected failures (the next N requests to a path answer 409/500) and a request log
  (method, path, user agent, status) to count writes from.

What the cluster's controllers do (a Deployment becoming ready, pods in chosen states) lives in
`cluster.py`, writing through `write_status` like a controller would; the object semantics
behind every verb are in `store.py`.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import kmock
from kmock._internal import rendering

from tests.emulator.store import (
    NAMESPACES,
    ApiError,
    Body,
    Key,
    KindInfo,
    ObjectStore,
    _Watcher,
    merge_patch,
)

__all__ = ["NAMESPACES", "Body", "ClusterEmulator", "KindInfo", "LoggedRequest"]

# kmock reads /api/v1/namespaces/NAME as a namespace scope, not as the Namespace object.
NAMESPACE_PATH = re.compile(r"^/api/v1/namespaces(?:/([^/]+))?/?$")
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    remaining: int


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    agent: str
    status: int = 0
    at: float = field(default_factory=time.monotonic)

    @property
    def is_write(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE")


@attrs.define(kw_only=True)
class ClusterEmulator(ObjectStore, kmock.KubernetesEmulator):
    kinds: dict[kmock.resource, KindInfo] = attrs.field(factory=dict)
    log: list[LoggedRequest] = attrs.field(factory=list)
    faults: list[Fault] = attrs.field(factory=list)
    _rv: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1))
    _last_rv: int = 0
    _events: list[tuple[int, kmock.resource, str, Body, Body | None]] = attrs.field(factory=list)
    _watchers: list[_Watcher] = attrs.field(factory=list)

    # --- setup -------------------------------------------------------------------------------
    def register(self, resource: str, info: KindInfo) -> kmock.resource:
        res = kmock.resource(resource)
        self.kinds[res] = info
        subresources = {name for name, on in (("status", info.status), ("scale", info.scale)) if on}
        self.resources[res] = kmock.ResourceInfo(
            kind=info.kind,
            singular=info.kind.lower(),
            namespaced=info.namespaced,
            verbs=set(VERBS),
            subresources=subresources,
        )
        return res

    def fail(self, method: str, path: str, status: int, times: int = 1) -> None:
        """The next `times` requests with this method and a path matching `path` answer `status`."""
        self.faults.append(Fault(method.upper(), re.compile(path), status, times))

    # --- reading state (for tests) ------------------------------------------------------------
    def writes(self, since: int = 0, *, agent: str | None = None) -> list[LoggedRequest]:
        """Writes logged since log position `since`, optionally only from user agents with a prefix."""
        return [
            entry
            for entry in self.log[since:]
            if entry.is_write and (agent is None or entry.agent.startswith(agent))
        ]

    def quiet_for(self, seconds: float) -> bool:
        """No request arrived in the last `seconds` (watch streams stay open and do not count)."""
        return not self.log or time.monotonic() - self.log[-1].at >= seconds

    # --- HTTP --------------------------------------------------------------------------------
    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        found = NAMESPACE_PATH.match(raw_request.path)
        if found is None or NAMESPACES not in self.kinds:
            return await super().__call__(raw_request)
        # Namespaces as objects (kmock answers a list of them with 500): Kopf lists and watches
        # them when it serves named namespaces.
        await raw_request.read()
        try:
            data = await raw_request.json()
        except ValueError:
            data = None
        request = rendering.Request(
            method=raw_request.method,
            url=raw_request.url,
            params=dict(raw_request.query),
            headers=dict(raw_request.headers),
            data=data,
            resource=NAMESPACES,
            name=found.group(1),
            raw_request=raw_request,
        )
        return await self._handle(request)

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        method = str(request.method.value).upper()
        raw = request._raw_request
        path = raw.path if raw is not None else str(request.url.path)
        agent = request.headers.get("User-Agent", "")
        entry = LoggedRequest(method, path, dict(request.params), agent)
        self.log.append(entry)
        response = await self._dispatch(request, method, path)
        entry.status = response.status
        return response

    async def _dispatch(
        self, request: rendering.Request, method: str, path: str
    ) -> aiohttp.web.StreamResponse:
        for fault in self.faults:
            if fault.remaining > 0 and fault.method == method and fault.path.search(path):
                fault.remaining -= 1
                reasons = {401: "Unauthorized", 409: "Conflict", 429: "TooManyRequests", 500: "InternalError"}
                reason = reasons.get(fault.status, "ServiceUnavailable")
                return self._error(ApiError(fault.status, reason, f"injected {fault.status} for {path}"))
        res = request.resource
        if res is None or res not in self.kinds or request.resource.plural is None:
            return await super()._handle(request)
        try:
            return await self._serve(request, res, method)
        except ApiError as exc:
            return self._error(exc)

    async def _serve(
        self, request: rendering.Request, res: kmock.resource, method: str
    ) -> aiohttp.web.StreamResponse:
        info = self.kinds[res]
        namespace = request.namespace if info.namespaced else None
        name, sub, params = request.name, request.subresource, request.params
        if method == "GET" and params.get("watch") in ("true", "1"):
            return await self._watch(request, res, namespace)
        if name is None:
            if method == "GET":
                return self._json(self._list(res, namespace, params))
            if method == "POST":
                return self._json(self.do_create(res, namespace, request.data or {}), 201)
            if method == "DELETE":
                items = self._list(res, namespace, params)["items"]
                for obj in items:
                    self.do_delete(res, (res, namespace, obj["metadata"]["name"]))
                return self._json({"kind": f"{info.kind}List", "items": items})
            raise ApiError(405, "MethodNotAllowed", f"{method} on a collection")
        key = (res, namespace, name)
        current = self.read(*key)
        if current is None:
            raise ApiError(404, "NotFound", f'{res.plural} "{name}" not found')
        if sub == "scale":
            return await self._scale(request, res, key, current, method)
        if method == "GET":
            return self._json(current)
        if method == "DELETE":
            return self._json(self.do_delete(res, key))
        if method == "PUT":
            return self._json(self.do_update(res, key, request.data or {}, sub))
        if method == "PATCH":
            return self._json(self.do_update(res, key, self._patched(request, current), sub))
        raise ApiError(405, "MethodNotAllowed", method)

    def _patched(self, request: rendering.Request, current: Body) -> Body:
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
        new: Body
        if ctype == "application/json-patch+json":
            try:
                new = jsonpatch.apply_patch(current, request.data, in_place=False)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise ApiError(422, "Invalid", f"the JSON patch cannot be applied: {exc}") from exc
        elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            # A strategic merge patch is taken as a merge patch: lists are replaced, not merged by key.
            new = merge_patch(current, request.data or {})
        else:
            raise ApiError(415, "UnsupportedMediaType", f"patch type {ctype!r} is not emulated")
        # A patch may only carry a resourceVersion as a precondition; no mention means none.
        patch_meta = (request.data or {}).get("metadata", {}) if isinstance(request.data, dict) else {}
        if "resourceVersion" not in patch_meta:
            new.setdefault("metadata", {}).pop("resourceVersion", None)
        return new

    async def _scale(
        self, request: rendering.Request, res: kmock.resource, key: Key, current: Body, method: str
    ) -> aiohttp.web.StreamResponse:
        if not self.kinds[res].scale:
            raise ApiError(404, "NotFound", "no scale subresource")
        if method == "PATCH":
            replicas = ((request.data or {}).get("spec") or {}).get("replicas")
            if replicas is not None:
                new = copy.deepcopy(current)
                new["spec"]["replicas"] = int(replicas)
                new["metadata"].pop("resourceVersion", None)
                current = self.do_update(res, key, new, None)
        elif method != "GET":
            raise ApiError(405, "MethodNotAllowed", method)
        status = current.get("status") or {}
        return self._json(
            {
                "apiVersion": "autoscaling/v1",
                "kind": "Scale",
                "metadata": {
                    k: current["metadata"][k] for k in ("name", "namespace", "uid", "resourceVersion")
                },
                "spec": {"replicas": current.get("spec", {}).get("replicas", 1)},
                "status": {"replicas": status.get("replicas", 0), "selector": status.get("selector", "")},
            }
        )

    def _list(self, res: kmock.resource, namespace: str | None, params: Mapping[str, str]) -> Body:
        labels, fields = params.get("labelSelector", ""), params.get("fieldSelector", "")
        info = self.kinds[res]
        items = [obj for obj in self.items(res, namespace) if self._selected(obj, namespace, labels, fields)]
        version = f"{res.group}/{res.version}" if res.group else res.version
        return {
            "apiVersion": version,
            "kind": f"{info.kind}List",
            "metadata": {"resourceVersion": str(self._last_rv)},
            "items": items,
        }

    async def _watch(
        self, request: rendering.Request, res: kmock.resource, namespace: str | None
    ) -> aiohttp.web.StreamResponse:
        params = request.params
        watcher = _Watcher(res, namespace, params.get("labelSelector", ""), params.get("fieldSelector", ""))
        since = params.get("resourceVersion")
        # Backlog and registration happen with no await between them: no event is lost or doubled.
        if since and since != "0":
            for rv, eres, kind, obj, old in self._events:
                if rv > int(since) and eres == res:
                    event = self._event_for(watcher, kind, obj, old)
                    if event is not None:
                        watcher.queue.put_nowait(event)
        else:
            for obj in self._list(res, namespace, params)["items"]:
                watcher.queue.put_nowait({"type": "ADDED", "object": obj})
        self._watchers.append(watcher)
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        raw = request._raw_request
        assert raw is not None
        loop = asyncio.get_running_loop()
        timeout = float(params.get("timeoutSeconds") or 0)
        deadline = loop.time() + timeout if timeout else None
        try:
            await response.prepare(raw)
            while deadline is None or loop.time() < deadline:
                try:
                    event = await asyncio.wait_for(watcher.queue.get(), timeout=0.5)
                except TimeoutError:
                    if raw.transport is None or raw.transport.is_closing():
                        break  # the client went away
                    continue
                if event is None:
                    break
                await response.write(json.dumps(event).encode() + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._watchers.remove(watcher)
        return response

    def close_watches(self) -> None:
        for watcher in self._watchers:
            watcher.queue.put_nowait(None)

    @staticmethod
    def _json(body: Any, status: int = 200) -> aiohttp.web.Response:
        return aiohttp.web.json_response(body, status=status)

    @staticmethod
    def _error(exc: ApiError) -> aiohttp.web.Response:
        body = {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "code": exc.status,
            "reason": exc.reason,
            "message": exc.message,
        }
        return aiohttp.web.json_response(body, status=exc.status)
