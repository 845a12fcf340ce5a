"""The object semantics of the emulated API server: what a write does to the stored objects.

Server metadata, generation, no-op writes, the status subresource, schema defaults and pruning,
finalizers, garbage collection, and the watch events each write produces. `ClusterEmulator`
(emulator.py) mixes this in and serves it over HTTP; tests and the emulated controllers
(cluster.py) call `do_create` / `write_status` directly where a controller, not a client, acts.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import itertools
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kmock

from tests.emulator.schema import apply_defaults, prune
from tests.emulator.selectors import matches_fields, matches_labels

Body = dict[str, Any]
Key = tuple[kmock.resource, str | None, str]
NAMESPACES = kmock.resource("", "v1", "namespaces")


@dataclass
class KindInfo:
    kind: str
    namespaced: bool = True
    status: bool = False  # has the /status subresource
    scale: bool = False  # has /scale, with spec.replicas / status.replicas / status.selector
    schema: Body | None = None  # openAPIV3Schema (custom resources): defaults and pruning


@dataclass
class _Watcher:
    resource: kmock.resource
    namespace: str | None
    labels: str
    fields: str
    queue: asyncio.Queue[Body | None] = field(default_factory=asyncio.Queue)


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge, null deletes, anything else (lists too) replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _spec_part(obj: Mapping[str, Any]) -> Body:
    # What `generation` tracks: everything but metadata and status.
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


class ObjectStore:
    """Mixed into ClusterEmulator, whose attrs fields these are."""

    objects: kmock.ObjectsArray
    kinds: dict[kmock.resource, KindInfo]
    _rv: itertools.count[int]
    _last_rv: int
    _events: list[tuple[int, kmock.resource, str, Body, Body | None]]
    _watchers: list[_Watcher]

    def read(self, resource: kmock.resource, namespace: str | None, name: str) -> Body | None:
        key = (resource, namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return copy.deepcopy(self.objects[key].raw)

    def items(self, resource: kmock.resource, namespace: str | None = None) -> list[Body]:
        return [
            copy.deepcopy(obj.raw)
            for (res, ns, _), obj in self.objects.items()
            if res == resource and not obj.deleted and namespace in (None, ns)
        ]

    def _next_rv(self) -> str:
        self._last_rv = next(self._rv)
        return str(self._last_rv)

    def _publish(self, res: kmock.resource, kind: str, obj: Body, old: Body | None = None) -> None:
        rv = int(obj["metadata"]["resourceVersion"])
        self._events.append((rv, res, kind, obj, old))
        for watcher in self._watchers:
            if watcher.resource == res:
                event = self._event_for(watcher, kind, obj, old)
                if event is not None:
                    watcher.queue.put_nowait(event)

    def _store(self, key: Key, obj: Body) -> None:
        if key in self.objects:
            self.objects[key].history.append(obj)
        else:
            self.objects[key] = obj

    def _finish(self, info: KindInfo, obj: Body) -> None:
        if info.schema is not None:
            apply_defaults(obj, info.schema)
            prune(obj, info.schema, root=True)

    def do_create(self, res: kmock.resource, namespace: str | None, body: Body) -> Body:
        info = self.kinds[res]
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if info.namespaced:
            if meta.get("namespace") not in (None, namespace):
                raise ApiError(400, "BadRequest", "the namespace of the object does not match the URL")
            meta["namespace"] = namespace
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ApiError(422, "Invalid", "metadata.name or metadata.generateName is required")
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        if (
            info.namespaced
            and NAMESPACES in self.kinds
            and self.read(NAMESPACES, None, str(namespace)) is None
        ):
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found')
        key = (res, namespace if info.namespaced else None, meta["name"])
        if self.read(*key) is not None:
            raise ApiError(409, "AlreadyExists", f'{res.plural} "{meta["name"]}" already exists')
        for server_field in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(server_field, None)
        meta.update(
            uid=str(uuid.uuid4()), generation=1, creationTimestamp=_now(), resourceVersion=self._next_rv()
        )
        if info.status:
            obj.pop("status", None)  # status arrives only through /status
        self._finish(info, obj)
        self._store(key, obj)
        self._publish(res, "ADDED", obj)
        if meta.get("ownerReferences"):
            asyncio.get_running_loop().call_soon(self.collect_garbage)
        return obj

    def do_update(self, res: kmock.resource, key: Key, new: Body, subresource: str | None) -> Body:
        """Store `new` as the object's next version, with the subresource rules; no-ops change nothing."""
        info = self.kinds[res]
        current = self.read(*key)
        if current is None:
            raise ApiError(404, "NotFound", f'{res.plural} "{key[2]}" not found')
        expected = (new.get("metadata") or {}).get("resourceVersion")
        if expected and expected != current["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified; apply your changes to the latest")
        if subresource == "status":
            obj = copy.deepcopy(current)
            obj["status"] = copy.deepcopy(new.get("status") or {})
            if not obj["status"]:
                del obj["status"]
        else:
            obj = copy.deepcopy(new)
            meta = obj.setdefault("metadata", {})
            for fixed in ("uid", "name", "namespace", "creationTimestamp", "generation", "deletionTimestamp"):
                if fixed in current["metadata"]:
                    meta[fixed] = current["metadata"][fixed]
                else:
                    meta.pop(fixed, None)
            if info.status:  # the main resource ignores status writes
                obj.pop("status", None)
                if "status" in current:
                    obj["status"] = current["status"]
        self._finish(info, obj)
        obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        if obj == current:
            return current
        if _spec_part(obj) != _spec_part(current):
            obj["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
        obj["metadata"]["resourceVersion"] = self._next_rv()
        if obj["metadata"].get("deletionTimestamp") and not obj["metadata"].get("finalizers"):
            return self._remove(res, key, obj)
        self._store(key, obj)
        self._publish(res, "MODIFIED", obj, current)
        return obj

    def write_status(self, res: kmock.resource, namespace: str | None, name: str, status: Body) -> Body:
        """What a controller does: merge `status` into the object's status via /status."""
        key = (res, namespace, name)
        current = self.read(*key)
        if current is None:
            raise ApiError(404, "NotFound", f"{name} not found")
        new = {**current, "status": merge_patch(current.get("status") or {}, status)}
        new["metadata"] = {**new["metadata"], "resourceVersion": None}
        return self.do_update(res, key, new, "status")

    def do_delete(self, res: kmock.resource, key: Key) -> Body:
        current = self.read(*key)
        if current is None:
            raise ApiError(404, "NotFound", f'{res.plural} "{key[2]}" not found')
        if current["metadata"].get("finalizers"):
            if current["metadata"].get("deletionTimestamp"):
                return current
            obj = copy.deepcopy(current)
            obj["metadata"].update(deletionTimestamp=_now(), deletionGracePeriodSeconds=0)
            obj["metadata"]["resourceVersion"] = self._next_rv()
            self._store(key, obj)
            self._publish(res, "MODIFIED", obj, current)
            return obj
        current["metadata"]["resourceVersion"] = self._next_rv()
        return self._remove(res, key, current)

    def _remove(self, res: kmock.resource, key: Key, obj: Body) -> Body:
        self.objects[key].history.append(obj)
        self.objects[key].delete()
        self._publish(res, "DELETED", obj)
        # Background propagation: the garbage collector runs after the owner is gone.
        asyncio.get_running_loop().call_soon(self.collect_garbage)
        return obj

    def collect_garbage(self) -> None:
        """Delete every object whose owners (by uid) no longer exist, as kube-controller-manager does."""
        while True:
            live: dict[tuple[kmock.resource, str | None, str], Body] = {
                key: obj.raw for key, obj in self.objects.items() if not obj.deleted
            }
            uids = {obj["metadata"].get("uid") for obj in live.values()}
            orphans = [
                key
                for key, obj in live.items()
                if (refs := obj["metadata"].get("ownerReferences"))
                and not any(ref.get("uid") in uids for ref in refs)
            ]
            if not orphans:
                return
            for key in orphans:
                self.do_delete(key[0], key)

    def _selected(self, obj: Body | None, namespace: str | None, labels: str, fields: str) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        return (
            namespace in (None, meta.get("namespace"))
            and matches_labels(labels, meta.get("labels") or {})
            and matches_fields(fields, obj)
        )

    def _event_for(self, watcher: _Watcher, kind: str, obj: Body, old: Body | None) -> Body | None:
        selected = self._selected(obj, watcher.namespace, watcher.labels, watcher.fields)
        was = self._selected(old, watcher.namespace, watcher.labels, watcher.fields)
        if kind == "MODIFIED" and was and not selected:
            return {"type": "DELETED", "object": obj}
        if kind == "MODIFIED" and selected and not was and old is not None:
            return {"type": "ADDED", "object": obj}
        return {"type": kind, "object": obj} if selected else None
