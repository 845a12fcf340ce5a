"""kube.py: what counts as "already applied", and apply's create / patch / no-write decisions."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest

from model_garden_operator.kube import DEPLOYMENTS, AlreadyExists, Kind, apply, covers


@pytest.mark.parametrize(
    ("actual", "desired", "expected"),
    [
        ({"a": 1, "added-by-server": 2}, {"a": 1}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"a": {"b": [1, 2]}}, {"a": {"b": [1, 2]}}, True),
        ({"a": [1, 2, 3]}, {"a": [1, 2]}, False),  # a list someone extended is drift
        ({"c": [{"name": "x", "imagePullPolicy": "IfNotPresent"}]}, {"c": [{"name": "x"}]}, True),
        ({"limits": {"nvidia.com/gpu": "2"}}, {"limits": {"nvidia.com/gpu": 2}}, True),  # quantities
        ({"flag": "True"}, {"flag": True}, False),
        ({}, {"a": None}, False),
    ],
)
def test_covers(actual: Any, desired: Any, expected: bool) -> None:
    assert covers(actual, desired) is expected


def test_kind_urls() -> None:
    assert DEPLOYMENTS.url("ns") == "/apis/apps/v1/namespaces/ns/deployments"
    assert Kind("api/v1", "pods").url("ns", "p", "status") == "/api/v1/namespaces/ns/pods/p/status"


class FakeClient:
    """Records what apply asks for; objects live in a dict."""

    def __init__(self, existing: dict[str, Any] | None = None, race: bool = False) -> None:
        self.obj = existing
        self.race = race
        self.calls: list[str] = []

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append("get")
        return copy.deepcopy(self.obj)

    async def create(self, kind: Kind, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append("create")
        if self.race:  # someone else created it between our GET and POST
            self.race = False
            self.obj = {**copy.deepcopy(dict(body)), "status": {}}
            raise AlreadyExists(409, "exists")
        self.obj = copy.deepcopy(dict(body))
        return copy.deepcopy(self.obj)

    async def patch(self, kind: Kind, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append("patch")
        assert self.obj is not None
        self.obj = {**self.obj, **copy.deepcopy(dict(patch))}
        return copy.deepcopy(self.obj)


DESIRED = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "m", "namespace": "ns", "labels": {"a": "b"}},
    "spec": {"replicas": 1},
}


async def test_apply_creates_what_is_missing() -> None:
    client = FakeClient()
    assert (await apply(client, DEPLOYMENTS, DESIRED)).action == "created"  # type: ignore[arg-type]
    assert client.calls == ["get", "create"]


async def test_apply_writes_nothing_when_the_object_matches() -> None:
    server_view = copy.deepcopy(DESIRED) | {"status": {"replicas": 1}}
    server_view["metadata"] |= {"uid": "u", "resourceVersion": "7"}
    client = FakeClient(server_view)
    assert (await apply(client, DEPLOYMENTS, DESIRED)).action == "unchanged"  # type: ignore[arg-type]
    assert client.calls == ["get"]


async def test_apply_patches_owned_fields_only() -> None:
    client = FakeClient({**copy.deepcopy(DESIRED), "spec": {"replicas": 5}})
    assert (await apply(client, DEPLOYMENTS, DESIRED)).action == "patched"  # type: ignore[arg-type]
    assert client.calls == ["get", "patch"]
    assert client.obj is not None and client.obj["spec"] == {"replicas": 1}


async def test_apply_survives_a_create_race() -> None:
    client = FakeClient(race=True)
    assert (await apply(client, DEPLOYMENTS, DESIRED)).action == "unchanged"  # type: ignore[arg-type]
    assert client.calls == ["get", "create", "get"]
