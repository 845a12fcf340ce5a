"""The real operator against the emulated API: children, status, drift, failures, restarts.

Each test drives the cluster as a person (HTTP writes, logged with kmock's user agent) or as the
cluster's controllers (Deployment status, Pods), then waits on the emulator's state with a timeout.
Write counts come from the emulator's request log.
"""

from __future__ import annotations

from typing import Any

import pytest

from model_garden_common import constants as C
from model_garden_operator import handlers
from tests.emulator.cluster import DEPLOYMENTS, IM, PODS, SERVICES, TEST_AGENT, Cluster, PodState
from tests.emulator.conftest import Operator, wait_for
from tests.unit.factories import make_model

pytestmark = pytest.mark.timeout(60)

NS = "default"
DECLARED_STATUS = {"phase", "conditions", "observedGeneration", "replicas", "readyReplicas", "ready"}
DECLARED_STATUS |= {"endpoint", "selector"}


def operator_writes(cluster: Cluster, since: int) -> list[str]:
    """Writes since log position `since` by anyone but the test itself, as "METHOD path"."""
    return [f"{w.method} {w.path}" for w in cluster.emu.writes(since) if not w.agent.startswith(TEST_AGENT)]


def container(cluster: Cluster, name: str) -> dict[str, Any]:
    dep = cluster.deployment(NS, name)
    assert dep is not None
    return dep["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]


async def settled(cluster: Cluster, timeout: float = 5.0) -> None:
    """Wait until the operator has gone quiet (no request for half a second)."""
    await wait_for(lambda: cluster.emu.quiet_for(0.5), timeout, "the operator to settle")


async def created(cluster: Cluster, name: str, **spec: Any) -> dict[str, Any]:
    await cluster.create(IM, make_model(name, **spec))
    return await wait_for(
        lambda: cluster.phase(NS, name) and cluster.model(NS, name), what=f"{name}'s status"
    )


async def test_create_makes_deployment_service_and_status(cluster: Cluster, operator: Operator) -> None:
    since = len(cluster.emu.log)
    model = await created(cluster, "llama")
    await settled(cluster)

    dep, svc = cluster.deployment(NS, "llama"), cluster.service(NS, "llama")
    assert dep is not None and svc is not None
    for child in (dep, svc):
        owner = child["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["uid"], owner["controller"]) == (C.KIND, model["metadata"]["uid"], True)
        assert child["metadata"]["labels"][C.LABEL_MANAGED_BY] == C.MANAGED_BY
    model = cluster.model(NS, "llama")
    assert model is not None
    status = model["status"]
    assert set(status) <= DECLARED_STATUS  # Kopf's bookkeeping is in annotations, nothing undeclared
    assert status["phase"] == "Pending"
    assert status["ready"] == "0/1" and status["observedGeneration"] == 1
    assert status["endpoint"] == "http://llama.default.svc.cluster.local/v1"
    assert status["selector"] == ",".join(
        f"{k}={v}" for k, v in sorted(dep["spec"]["selector"]["matchLabels"].items())
    )
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "False",
        "Progressing": "True",
        "Degraded": "False",
    }
    assert f"{C.API_GROUP}/last-handled-configuration" in model["metadata"]["annotations"]

    writes = operator_writes(cluster, since)
    children_and_model = [w for w in writes if "/events" not in w]
    # POST NetworkPolicy, Deployment, Service; PATCH status; PATCH Kopf's annotations.
    assert len(children_and_model) <= 5, writes
    await wait_for(lambda: cluster.events(NS, "llama"), what="an event")
    assert [e["reason"] for e in cluster.events(NS, "llama")] == ["Created"]


async def test_tensor_parallel_change_updates_the_deployment(cluster: Cluster, operator: Operator) -> None:
    await created(cluster, "llama")
    await cluster.patch(IM, NS, "llama", {"spec": {"tensorParallelSize": 2}})

    await wait_for(lambda: container(cluster, "llama")["resources"]["limits"].get("nvidia.com/gpu") == "2")
    args = container(cluster, "llama")["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == "2"
    await wait_for(lambda: cluster.model(NS, "llama")["status"]["observedGeneration"] == 2)  # type: ignore[index]


async def test_ready_deployment_makes_the_model_ready(cluster: Cluster, operator: Operator) -> None:
    await created(cluster, "llama")
    cluster.deployment_ready(NS, "llama")

    await wait_for(lambda: cluster.phase(NS, "llama") == "Ready")
    status = cluster.model(NS, "llama")["status"]  # type: ignore[index]
    assert (status["readyReplicas"], status["ready"]) == (1, "1/1")
    assert status["endpoint"] == "http://llama.default.svc.cluster.local/v1"
    assert cluster.condition(NS, "llama", "Ready")["status"] == "True"
    await wait_for(
        lambda: "Ready" in [e["reason"] for e in cluster.events(NS, "llama")], what="a Ready event"
    )


async def test_deployment_deleted_by_hand_is_recreated_within_5s(
    cluster: Cluster, operator: Operator
) -> None:
    await created(cluster, "llama")
    old_uid = cluster.deployment(NS, "llama")["metadata"]["uid"]  # type: ignore[index]
    await cluster.delete(DEPLOYMENTS, NS, "llama")

    await wait_for(
        lambda: (cluster.deployment(NS, "llama") or {}).get("metadata", {}).get("uid") not in (None, old_uid),
        5,
    )


async def test_deployment_edited_by_hand_is_restored(cluster: Cluster, operator: Operator) -> None:
    await created(cluster, "llama")
    image = container(cluster, "llama")["image"]
    edited = {
        "replicas": 3,
        "template": {"spec": {"containers": [{"name": "runtime", "image": "evil:latest"}]}},
    }
    await cluster.patch(DEPLOYMENTS, NS, "llama", {"spec": edited})

    await wait_for(lambda: container(cluster, "llama")["image"] == image, 5)
    assert cluster.deployment(NS, "llama")["spec"]["replicas"] == 1  # type: ignore[index]
    assert "--tensor-parallel-size" in container(cluster, "llama")["args"]
    await wait_for(lambda: "Updated" in [e["reason"] for e in cluster.events(NS, "llama")], what="an event")


async def test_deleting_the_model_removes_its_children(cluster: Cluster, operator: Operator) -> None:
    await created(cluster, "llama")
    cluster.add_pod(NS, "llama", "loading")
    await cluster.delete(IM, NS, "llama")

    await wait_for(lambda: not cluster.emu.items(DEPLOYMENTS) and not cluster.emu.items(SERVICES))
    await wait_for(lambda: not cluster.emu.items(PODS))
    await settled(cluster)
    assert cluster.deployment(NS, "llama") is None  # nothing recreated it


async def test_restart_mid_reconcile_makes_no_duplicates(cluster: Cluster, operator: Operator) -> None:
    # The Service cannot be created: the reconcile stops half-way, after the Deployment.
    cluster.emu.fail("POST", "/services$", 500, times=1000)
    await cluster.create(IM, make_model("llama"))
    await wait_for(lambda: cluster.deployment(NS, "llama"), what="the Deployment")
    await wait_for(lambda: any(e.status == 500 for e in cluster.emu.log), what="a failed Service create")
    uid = cluster.deployment(NS, "llama")["metadata"]["uid"]  # type: ignore[index]

    await operator.stop()
    cluster.emu.faults.clear()
    await operator.start()

    await wait_for(lambda: cluster.service(NS, "llama") and cluster.phase(NS, "llama"), 10)
    assert cluster.deployment(NS, "llama")["metadata"]["uid"] == uid  # type: ignore[index]
    deployment_creates = [
        e for e in cluster.emu.log if e.method == "POST" and e.path.endswith("/deployments")
    ]
    assert len(deployment_creates) == 1
    assert len(cluster.emu.items(DEPLOYMENTS)) == len(cluster.emu.items(SERVICES)) == 1


async def test_idle_resync_writes_nothing(cluster: Cluster, operator: Operator) -> None:
    await created(cluster, "ready-one")
    await created(cluster, "pending-one", replicas=2)
    cluster.deployment_ready(NS, "ready-one")
    cluster.add_pod(NS, "pending-one", "unschedulable-gpu")
    await wait_for(lambda: cluster.phase(NS, "ready-one") == "Ready")
    await wait_for(lambda: cluster.condition(NS, "pending-one", "Ready").get("reason") == "WaitingForGPUs")
    await settled(cluster)

    since = len(cluster.emu.log)
    await operator.restart()  # every model resumes: a full resync
    for name in ("ready-one", "pending-one"):
        await wait_for(lambda n=name: any(e.path.endswith(f"/services/{n}") for e in cluster.emu.log[since:]))
    await settled(cluster)
    assert operator_writes(cluster, since) == []


async def test_broken_model_fails_and_the_good_one_still_reconciles(
    cluster: Cluster, operator: Operator
) -> None:
    await cluster.create(IM, make_model("broken", extra_args=["--tensor-parallel-size", "2"]))
    await cluster.create(IM, make_model("good"))

    await wait_for(lambda: cluster.phase(NS, "broken") == "Failed")
    degraded = cluster.condition(NS, "broken", "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "InvalidSpec")
    assert "spec.extraArgs" in degraded["message"]
    assert cluster.deployment(NS, "broken") is None
    await wait_for(lambda: cluster.events(NS, "broken"), what="an event")
    assert [e["type"] for e in cluster.events(NS, "broken")] == ["Warning"]

    await wait_for(lambda: cluster.deployment(NS, "good"))
    cluster.deployment_ready(NS, "good")
    await wait_for(lambda: cluster.phase(NS, "good") == "Ready")


async def test_missing_token_secret_fails_until_it_appears(
    cluster: Cluster, operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handlers, "SECRET_RETRY_DELAY", 0.5)
    await cluster.create(IM, make_model("gated", hugging_face_token_secret={"name": "hf"}))

    await wait_for(lambda: cluster.phase(NS, "gated") == "Failed")
    ready = cluster.condition(NS, "gated", "Ready")
    assert ready["reason"] == "MissingSecret" and "spec.huggingFaceTokenSecret" in ready["message"]
    assert cluster.deployment(NS, "gated") is None

    await cluster.create_secret(NS, "hf", {"HF_TOKEN": "hf_xxx"})
    await wait_for(lambda: cluster.phase(NS, "gated") == "Pending", 10)
    assert cluster.deployment(NS, "gated") is not None


async def test_injected_conflicts_and_server_errors_are_retried(cluster: Cluster, operator: Operator) -> None:
    cluster.emu.fail("POST", "/deployments$", 500, times=2)
    cluster.emu.fail("GET", "/services/llama$", 503, times=1)
    cluster.emu.fail("PATCH", "/inferencemodels/llama/status$", 409, times=2)
    cluster.emu.fail("PATCH", "/inferencemodels/llama$", 500, times=1)  # Kopf's own write

    await created(cluster, "llama")
    await wait_for(
        lambda: (
            f"{C.API_GROUP}/last-handled-configuration"
            in cluster.model(NS, "llama")["metadata"].get("annotations", {})
        )
    )  # type: ignore[index]
    assert all(fault.remaining == 0 for fault in cluster.emu.faults)
    assert len(cluster.emu.items(DEPLOYMENTS)) == 1 and cluster.service(NS, "llama") is not None
    assert cluster.phase(NS, "llama") == "Pending"


@pytest.mark.parametrize(
    ("state", "phase", "reason"),
    [
        ("pending", "Pending", "ContainerCreating"),
        ("unschedulable-gpu", "Pending", "WaitingForGPUs"),
        ("loading", "Loading", "ModelLoading"),
        ("image-pull", "Failed", "ImagePullBackOff"),
        ("crash-loop", "Failed", "CrashLoopBackOff"),
    ],
)
async def test_pod_states_give_phases(
    cluster: Cluster, operator: Operator, state: PodState, phase: str, reason: str
) -> None:
    await created(cluster, "llama")
    cluster.add_pod(NS, "llama", state)

    def shows() -> bool:
        return (cluster.phase(NS, "llama"), cluster.condition(NS, "llama", "Ready").get("reason")) == (
            phase,
            reason,
        )

    await wait_for(shows, what=f"phase {phase} ({reason})")


async def test_some_replicas_crash_looping_is_degraded(cluster: Cluster, operator: Operator) -> None:
    await created(cluster, "llama", replicas=2)
    cluster.add_pod(NS, "llama", "ready", index=0)
    cluster.add_pod(NS, "llama", "crash-loop", index=1)
    cluster.deployment_ready(NS, "llama", ready=1)

    await wait_for(lambda: cluster.condition(NS, "llama", "Degraded").get("reason") == "CrashLoopBackOff")
    assert cluster.phase(NS, "llama") == "Degraded"
    assert cluster.condition(NS, "llama", "Ready")["status"] == "True"
    assert cluster.model(NS, "llama")["status"]["ready"] == "1/2"  # type: ignore[index]


async def test_scaling_to_zero_stops_the_model(cluster: Cluster, operator: Operator) -> None:
    await created(cluster, "llama")
    await cluster.patch(IM, NS, "llama", {"spec": {"replicas": 0}}, sub="scale")  # kubectl scale

    await wait_for(lambda: cluster.phase(NS, "llama") == "Stopped")
    assert cluster.deployment(NS, "llama")["spec"]["replicas"] == 0  # type: ignore[index]
    scale = await cluster.get(cluster.url(IM, NS, "llama", "scale"))
    assert scale["status"]["selector"] == cluster.model(NS, "llama")["status"]["selector"]  # type: ignore[index]


async def test_watched_namespaces_narrow_the_operator(cluster: Cluster, operator_config: Any) -> None:
    for namespace in ("team-a", "team-b"):
        await cluster.create_namespace(namespace)
    narrow = Operator(operator_config, namespaces=("team-a",))
    await narrow.start()
    try:
        await cluster.create(IM, make_model("mine", namespace="team-a"))
        await cluster.create(IM, make_model("theirs", namespace="team-b"))
        await wait_for(lambda: cluster.deployment("team-a", "mine"))
        await settled(cluster)
        assert cluster.deployment("team-b", "theirs") is None
    finally:
        await narrow.stop()
