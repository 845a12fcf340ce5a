"""A whole emulated cluster for the operator: the API (emulator.py) with our resources registered,
a kubeconfig pointing at it, the controllers' part (a Deployment reporting ready, Pods in chosen
states) and a person's part (kubectl-like writes over HTTP, logged with kmock's user agent so they
are told apart from the operator's in the request log).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import kmock
import yaml

from model_garden_common import constants as C
from model_garden_operator.crd_schema import crd_manifest
from tests.emulator.emulator import NAMESPACES, Body, ClusterEmulator, KindInfo

IM = kmock.resource(C.API_GROUP, C.API_VERSION, C.PLURAL)
DEPLOYMENTS = kmock.resource("apps", "v1", "deployments")
SERVICES = kmock.resource("", "v1", "services")
PODS = kmock.resource("", "v1", "pods")
SECRETS = kmock.resource("", "v1", "secrets")
NETWORK_POLICIES = kmock.resource("networking.k8s.io", "v1", "networkpolicies")
EVENTS = kmock.resource("", "v1", "events")
CRDS = kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
TEST_AGENT = "kmock"  # kmock's client identifies as kmock/<version>

PodState = Literal["pending", "unschedulable-gpu", "image-pull", "crash-loop", "loading", "ready"]


def register_all(emu: ClusterEmulator) -> None:
    crd = crd_manifest()
    version = crd["spec"]["versions"][0]
    emu.register(
        f"{C.API_GROUP}/{C.API_VERSION}/{C.PLURAL}",
        KindInfo(C.KIND, status=True, scale=True, schema=version["schema"]["openAPIV3Schema"]),
    )
    emu.register("apps/v1/deployments", KindInfo("Deployment", status=True, scale=True))
    emu.register("v1/services", KindInfo("Service"))
    emu.register("v1/pods", KindInfo("Pod", status=True))
    emu.register("v1/secrets", KindInfo("Secret"))
    emu.register("networking.k8s.io/v1/networkpolicies", KindInfo("NetworkPolicy"))
    emu.register("v1/events", KindInfo("Event"))
    emu.register("v1/namespaces", KindInfo("Namespace", namespaced=False))
    emu.register(
        "apiextensions.k8s.io/v1/customresourcedefinitions",
        KindInfo("CustomResourceDefinition", namespaced=False),
    )


def write_kubeconfig(path: Path, server: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": "emulator-token"}}],
        "contexts": [
            {"name": "emulator", "context": {"cluster": "emulator", "user": "tester", "namespace": "default"}}
        ],
        "current-context": "emulator",
    }
    path.write_text(yaml.safe_dump(config))
    return path


class Cluster:
    """The emulator plus what a cluster's controllers and a person with kubectl would do."""

    def __init__(self, emu: ClusterEmulator, kubeconfig: Path) -> None:
        self.emu = emu
        self.kubeconfig = kubeconfig

    # --- kubectl-like writes, over HTTP ------------------------------------------------------
    async def _call(self, method: str, url: str, body: Any = None, ctype: str = "application/json") -> Body:
        async with self.emu.request(method, url, json=body, headers={"Content-Type": ctype}) as response:
            payload: Body = await response.json()
            if response.status >= 400:
                raise RuntimeError(f"{method} {url}: {response.status} {payload.get('message')}")
            return payload

    @staticmethod
    def url(res: kmock.resource, namespace: str | None, name: str | None = None, sub: str = "") -> str:
        base = f"/apis/{res.group}/{res.version}" if res.group else f"/api/{res.version}"
        parts = [base]
        if namespace is not None:
            parts.append(f"namespaces/{namespace}")
        parts.append(str(res.plural))
        parts += [p for p in (name, sub) if p]
        return "/".join(parts)

    async def get(self, url: str) -> Body:
        return await self._call("GET", url)

    async def create(self, res: kmock.resource, obj: Body) -> Body:
        namespace = obj.get("metadata", {}).get("namespace", "default")
        return await self._call("POST", self.url(res, None if res == NAMESPACES else namespace), obj)

    async def patch(self, res: kmock.resource, namespace: str, name: str, patch: Body, sub: str = "") -> Body:
        return await self._call(
            "PATCH", self.url(res, namespace, name, sub), patch, "application/merge-patch+json"
        )

    async def delete(self, res: kmock.resource, namespace: str, name: str) -> Body:
        return await self._call("DELETE", self.url(res, namespace, name))

    async def create_namespace(self, name: str) -> Body:
        return await self.create(
            NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )

    async def create_secret(self, namespace: str, name: str, data: dict[str, str]) -> Body:
        obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}}
        return await self.create(SECRETS, {**obj, "stringData": data})

    # --- state --------------------------------------------------------------------------------
    def model(self, namespace: str, name: str) -> Body | None:
        return self.emu.read(IM, namespace, name)

    def deployment(self, namespace: str, name: str) -> Body | None:
        return self.emu.read(DEPLOYMENTS, namespace, name)

    def service(self, namespace: str, name: str) -> Body | None:
        return self.emu.read(SERVICES, namespace, name)

    def network_policy(self, namespace: str, name: str) -> Body | None:
        return self.emu.read(NETWORK_POLICIES, namespace, name)

    def phase(self, namespace: str, name: str) -> str | None:
        return ((self.model(namespace, name) or {}).get("status") or {}).get("phase")

    def condition(self, namespace: str, name: str, ctype: str) -> Body:
        conditions = ((self.model(namespace, name) or {}).get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c.get("type") == ctype), {})

    def events(self, namespace: str, name: str) -> list[Body]:
        return [
            e
            for e in self.emu.items(EVENTS, namespace)
            if (e.get("involvedObject") or {}).get("name") == name
        ]

    # --- the controllers' part ----------------------------------------------------------------
    def deployment_ready(self, namespace: str, name: str, ready: int | None = None) -> Body:
        """The deployment controller's report: `ready` (default: all) of spec.replicas are ready."""
        dep = self.deployment(namespace, name)
        assert dep is not None, f"no Deployment {namespace}/{name}"
        desired = int(dep["spec"].get("replicas", 1))
        ready = desired if ready is None else ready
        status = {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": desired,
            "updatedReplicas": desired,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": (desired - ready) or None,
        }
        return self.emu.write_status(DEPLOYMENTS, namespace, name, status)

    def add_pod(self, namespace: str, model: str, state: PodState, index: int = 0) -> Body:
        """A pod of the model's Deployment (labels from its template), in `state`."""
        dep = self.deployment(namespace, model)
        assert dep is not None, f"no Deployment {namespace}/{model}"
        labels = copy.deepcopy(dep["spec"]["template"]["metadata"].get("labels") or {})
        owner = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": model,
            "uid": dep["metadata"]["uid"],
            "controller": True,
        }
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{model}-pod-{index}", "labels": labels, "ownerReferences": [owner]},
            "spec": copy.deepcopy(dep["spec"]["template"]["spec"]),
        }
        self.emu.do_create(PODS, namespace, pod)
        return self.set_pod_state(namespace, f"{model}-pod-{index}", state)

    def set_pod_state(self, namespace: str, pod: str, state: PodState) -> Body:
        return self.emu.write_status(PODS, namespace, pod, pod_status(state))


def pod_status(state: PodState, gpu_resource: str = "nvidia.com/gpu") -> Body:
    """A Pod status as the scheduler and kubelet write it for each state."""
    t = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def cond(ctype: str, status: bool, reason: str = "", message: str = "") -> Body:
        c: Body = {"type": ctype, "status": "True" if status else "False", "lastTransitionTime": t}
        return {**c, **({"reason": reason} if reason else {}), **({"message": message} if message else {})}

    def container(ready: bool, state: Body, restarts: int = 0) -> Body:
        return {"name": "runtime", "ready": ready, "restartCount": restarts, "state": state}

    if state == "unschedulable-gpu":
        message = f"0/3 nodes are available: 3 Insufficient {gpu_resource}."
        return {"phase": "Pending", "conditions": [cond("PodScheduled", False, "Unschedulable", message)]}
    scheduled = cond("PodScheduled", True)
    if state == "pending":
        waiting = {"waiting": {"reason": "ContainerCreating"}}
        return {
            "phase": "Pending",
            "conditions": [scheduled],
            "containerStatuses": [container(False, waiting)],
        }
    if state == "image-pull":
        waiting = {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "bad:tag"'}}
        return {
            "phase": "Pending",
            "conditions": [scheduled],
            "containerStatuses": [container(False, waiting)],
        }
    if state == "crash-loop":
        waiting = {
            "waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}
        }
        statuses = [container(False, waiting, restarts=6)]
        return {
            "phase": "Running",
            "conditions": [scheduled, cond("Ready", False)],
            "containerStatuses": statuses,
        }
    running = {"running": {"startedAt": t}}
    ready = state == "ready"
    return {
        "phase": "Running",
        "conditions": [scheduled, cond("Ready", ready)],
        "containerStatuses": [container(ready, running)],
    }


@contextlib.asynccontextmanager
async def running_cluster(
    tmp: Path, emulator: type[ClusterEmulator] = ClusterEmulator
) -> AsyncIterator[Cluster]:
    """An emulated cluster on a local port, with its kubeconfig written under `tmp`.

    `emulator` may be a subclass that serves more (tests/plugin adds the service proxy).
    """
    async with emulator() as emu, kmock.Server(emu) as server:
        register_all(emu)
        emu.do_create(CRDS, None, crd_manifest())
        for namespace in ("default", "kube-system"):
            emu.do_create(
                NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            )
        kubeconfig = write_kubeconfig(tmp / "kubeconfig", str(server.url).rstrip("/"))
        try:
            yield Cluster(emu, kubeconfig)
        finally:
            emu.close_watches()
