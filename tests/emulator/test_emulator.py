"""The emulator keeps the API conventions the operator tests rely on (no operator running here)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.emulator.cluster import DEPLOYMENTS, IM, PODS, Cluster
from tests.emulator.conftest import wait_for
from tests.unit.factories import make_model

NS = "default"


def deployment(name: str, labels: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    metadata = {"name": name, "labels": labels or {}, **meta}
    template = {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    spec = {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": template}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


async def test_server_metadata_and_generation(cluster: Cluster) -> None:
    created = await cluster.create(IM, make_model("m", namespace=None) | {"status": {"phase": "Ready"}})
    meta = created["metadata"]
    assert meta["namespace"] == NS and meta["uid"] and meta["creationTimestamp"]
    assert meta["generation"] == 1 and "status" not in created  # status only through /status
    assert created["spec"]["replicas"] == 1  # the CRD's default

    status = await cluster.patch(IM, NS, "m", {"status": {"phase": "Ready", "kopf": {"x": 1}}}, sub="status")
    assert status["status"] == {"phase": "Ready"}  # undeclared keys pruned
    assert status["metadata"]["generation"] == 1
    assert int(status["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])

    ignored = await cluster.patch(IM, NS, "m", {"status": {"phase": "Failed"}})  # main resource
    assert ignored["status"] == {"phase": "Ready"}
    assert ignored["metadata"]["resourceVersion"] == status["metadata"]["resourceVersion"]  # a no-op

    spec = await cluster.patch(IM, NS, "m", {"spec": {"replicas": 2}})
    assert spec["metadata"]["generation"] == 2


async def test_conflicts_and_missing_objects(cluster: Cluster) -> None:
    await cluster.create(DEPLOYMENTS, deployment("d", namespace=NS))
    with pytest.raises(RuntimeError, match="409"):
        await cluster.create(DEPLOYMENTS, deployment("d", namespace=NS))
    with pytest.raises(RuntimeError, match="404"):
        await cluster.patch(DEPLOYMENTS, NS, "missing", {"spec": {}})
    with pytest.raises(RuntimeError, match="404"):
        await cluster.create(DEPLOYMENTS, deployment("d", namespace="no-such-namespace"))


async def test_label_selectors(cluster: Cluster) -> None:
    await cluster.create(DEPLOYMENTS, deployment("a", {"app": "x", "tier": "web"}, namespace=NS))
    await cluster.create(DEPLOYMENTS, deployment("b", {"app": "y"}, namespace=NS))
    url = cluster.url(DEPLOYMENTS, None)

    async def names(selector: str) -> list[str]:
        listed = await cluster.get(f"{url}?labelSelector={selector}")
        return sorted(item["metadata"]["name"] for item in listed["items"])

    assert await names("app=x") == ["a"]
    assert await names("app!=x") == ["b"]
    assert await names("app in (x,y)") == ["a", "b"]
    assert await names("tier") == ["a"]
    assert await names("!tier") == ["b"]


async def test_watch_replays_after_a_resource_version(cluster: Cluster) -> None:
    first = await cluster.create(DEPLOYMENTS, deployment("a", namespace=NS))
    await cluster.create(DEPLOYMENTS, deployment("b", namespace=NS))
    since = first["metadata"]["resourceVersion"]
    url = f"{cluster.url(DEPLOYMENTS, None)}?watch=true&resourceVersion={since}&timeoutSeconds=1"
    async with cluster.emu.get(url) as response:
        events = [json.loads(line) for line in (await response.text()).splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "b")]


async def test_owner_deletion_collects_dependents(cluster: Cluster) -> None:
    owner = await cluster.create(IM, make_model("m"))
    ref = {"apiVersion": "x", "kind": "InferenceModel", "name": "m", "uid": owner["metadata"]["uid"]}
    await cluster.create(DEPLOYMENTS, deployment("m", namespace=NS, ownerReferences=[ref]))
    cluster.add_pod(NS, "m", "ready")  # owned by the Deployment
    await cluster.delete(IM, NS, "m")
    await wait_for(lambda: not cluster.emu.items(DEPLOYMENTS) and not cluster.emu.items(PODS))


async def test_finalizers_hold_deletion(cluster: Cluster) -> None:
    await cluster.create(DEPLOYMENTS, deployment("d", namespace=NS, finalizers=["x/y"]))
    marked = await cluster.delete(DEPLOYMENTS, NS, "d")
    assert marked["metadata"]["deletionTimestamp"]
    assert cluster.deployment(NS, "d") is not None
    await cluster.patch(DEPLOYMENTS, NS, "d", {"metadata": {"finalizers": None}})
    assert cluster.deployment(NS, "d") is None


async def test_injected_failures_and_the_request_log(cluster: Cluster) -> None:
    cluster.emu.fail("POST", "/deployments$", 500, times=1)
    since = len(cluster.emu.log)
    with pytest.raises(RuntimeError, match="500"):
        await cluster.create(DEPLOYMENTS, deployment("d", namespace=NS))
    await cluster.create(DEPLOYMENTS, deployment("d", namespace=NS))
    assert [(w.method, w.status) for w in cluster.emu.writes(since)] == [("POST", 500), ("POST", 201)]


async def test_scale_subresource(cluster: Cluster) -> None:
    await cluster.create(IM, make_model("m"))
    await cluster.patch(IM, NS, "m", {"status": {"replicas": 1, "selector": "a=b"}}, sub="status")
    scale = await cluster.patch(IM, NS, "m", {"spec": {"replicas": 3}}, sub="scale")
    assert scale["spec"]["replicas"] == 3 and scale["status"] == {"replicas": 1, "selector": "a=b"}
    assert cluster.model(NS, "m")["spec"]["replicas"] == 3  # type: ignore[index]
