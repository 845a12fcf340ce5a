"""status.py: the phase table, conditions, lastTransitionTime and the minimal status patch."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from model_garden_operator.status import (
    PodSummary,
    Problem,
    assess,
    derive_status,
    status_patch,
    summarize_pod,
)

NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)
GPU = "nvidia.com/gpu"


def pod(
    phase: str = "Running",
    ready: bool = False,
    waiting: str | None = None,
    unschedulable: str | None = None,
    since: datetime.datetime = NOW,
    name: str = "p0",
) -> dict[str, Any]:
    """A Pod body as the kubelet and scheduler report it."""
    stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions: list[dict[str, Any]] = [{"type": "Ready", "status": str(ready)}]
    if unschedulable:
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": unschedulable,
                "lastTransitionTime": stamp,
            }
        )
    state = {"waiting": {"reason": waiting, "message": f"{waiting} details"}} if waiting else {"running": {}}
    return {
        "metadata": {"name": name},
        "status": {"phase": phase, "conditions": conditions, "containerStatuses": [{"state": state}]},
    }


def deployment(replicas: int = 1, ready: int = 0, generation: int = 1, observed: int = 1) -> dict[str, Any]:
    status = {"observedGeneration": observed, "replicas": replicas, "updatedReplicas": replicas}
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": status | {"readyReplicas": ready},
    }


def model(replicas: int = 1, generation: int = 3, status: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": "m", "generation": generation},
        "spec": {"replicas": replicas},
    }
    if status is not None:
        obj["status"] = status
    return obj


def summaries(*pods: dict[str, Any]) -> list[PodSummary]:
    return [summarize_pod(p) for p in pods]


def status_of(
    m: dict[str, Any], dep: dict[str, Any] | None, pods: list[PodSummary], **kwargs: Any
) -> dict[str, Any]:
    return derive_status(
        m, dep, pods, endpoint="http://m.ns.svc/v1", selector="a=b", gpu_resource_name=GPU, now=NOW, **kwargs
    )


@pytest.mark.parametrize(
    ("replicas", "dep", "pods", "phase", "reason"),
    [
        (0, deployment(0), [], "Stopped", "ScaledToZero"),
        (1, None, [], "Pending", "Creating"),
        (1, deployment(1), [], "Pending", "PodsPending"),
        (1, deployment(1), [pod("Pending", waiting="ContainerCreating")], "Pending", "ContainerCreating"),
        (
            1,
            deployment(1),
            [pod("Pending", unschedulable=f"0/4 nodes: 4 Insufficient {GPU}.")],
            "Pending",
            "WaitingForGPUs",
        ),
        (
            1,
            deployment(1),
            [pod("Pending", unschedulable="0/4 nodes: node(s) had taints")],
            "Pending",
            "Unschedulable",
        ),
        (1, deployment(1), [pod("Running")], "Loading", "ModelLoading"),
        (1, deployment(1), [pod("Pending", waiting="ImagePullBackOff")], "Failed", "ImagePullBackOff"),
        (1, deployment(1), [pod("Pending", waiting="ErrImagePull")], "Failed", "ErrImagePull"),
        (1, deployment(1), [pod("Running", waiting="CrashLoopBackOff")], "Failed", "CrashLoopBackOff"),
        (1, deployment(1, ready=1), [pod(ready=True)], "Ready", "ReplicasReady"),
        (
            2,
            deployment(2, ready=1),
            [pod(ready=True), pod(waiting="CrashLoopBackOff", name="p1")],
            "Degraded",
            "CrashLoopBackOff",
        ),
        (2, deployment(2, ready=1), [pod(ready=True), pod(name="p1")], "Degraded", "ReplicasUnavailable"),
        (1, deployment(1, ready=1, generation=2, observed=1), [], "Ready", "RollingOut"),
    ],
)
def test_phase_table(
    replicas: int, dep: dict[str, Any] | None, pods: list[Any], phase: str, reason: str
) -> None:
    found = assess(replicas, dep, summaries(*pods), gpu_resource_name=GPU, now=NOW)
    assert (found.phase, found.reason) == (phase, reason)


def test_unschedulable_past_the_timeout_is_failed() -> None:
    waiting = pod("Pending", unschedulable=f"Insufficient {GPU}", since=NOW - datetime.timedelta(hours=1))
    found = assess(1, deployment(1), summaries(waiting), gpu_resource_name=GPU, now=NOW)
    assert (found.phase, found.reason) == ("Failed", "WaitingForGPUs")
    assert "unschedulable for over 15 min" in found.message


def test_terminating_pods_are_ignored() -> None:
    going = pod("Pending", waiting="ImagePullBackOff")
    going["metadata"]["deletionTimestamp"] = "2026-06-01T11:59:00Z"
    assert assess(1, deployment(1), summaries(going), gpu_resource_name=GPU, now=NOW).phase == "Pending"


@pytest.mark.parametrize(
    ("phase_of", "expected"),
    [
        (lambda: status_of(model(), deployment(1), summaries(pod())), ("False", "True", "False")),  # Loading
        (lambda: status_of(model(), deployment(1, 1), []), ("True", "False", "False")),  # Ready
        (lambda: status_of(model(0), deployment(0), []), ("False", "False", "False")),  # Stopped
        (
            lambda: status_of(model(), None, [], problem=Problem("InvalidSpec", "x")),
            ("False", "False", "True"),
        ),
        (
            lambda: status_of(model(2), deployment(2, 1), summaries(pod(True), pod(name="b"))),
            ("True", "True", "True"),
        ),
    ],
)
def test_conditions_follow_the_design_table(phase_of: Any, expected: tuple[str, str, str]) -> None:
    conditions = {c["type"]: c["status"] for c in phase_of()["conditions"]}
    assert (conditions["Ready"], conditions["Progressing"], conditions["Degraded"]) == expected


def test_status_fields() -> None:
    status = status_of(model(replicas=2), deployment(2, ready=1), [])
    assert status["phase"] == "Degraded"
    assert (status["replicas"], status["readyReplicas"], status["ready"]) == (2, 1, "1/2")
    assert (status["endpoint"], status["selector"], status["observedGeneration"]) == (
        "http://m.ns.svc/v1",
        "a=b",
        3,
    )
    for condition in status["conditions"]:
        assert condition["observedGeneration"] == 3
        assert condition["reason"][0].isupper() and " " not in condition["reason"]
        assert condition["lastTransitionTime"] == "2026-06-01T12:00:00Z"


def test_a_problem_wins_and_names_the_field() -> None:
    problem = Problem("InvalidSpec", "spec.extraArgs: --tensor-parallel-size is managed")
    status = status_of(model(), deployment(1, ready=1), [], problem=problem)
    assert status["phase"] == "Failed" and status["readyReplicas"] == 0
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "InvalidSpec" and "spec.extraArgs" in degraded["message"]


def test_last_transition_time_is_kept_while_the_status_value_holds() -> None:
    earlier = status_of(model(), deployment(1), summaries(pod("Pending")))  # Pending
    later = NOW + datetime.timedelta(minutes=5)
    loading = derive_status(
        model(status=earlier),
        deployment(1),
        summaries(pod("Running")),
        endpoint="http://m.ns.svc/v1",
        selector="a=b",
        gpu_resource_name=GPU,
        now=later,
    )
    times = {c["type"]: c["lastTransitionTime"] for c in loading["conditions"]}
    # Pending -> Loading changes reasons, not status values: every time stays.
    assert set(times.values()) == {"2026-06-01T12:00:00Z"}
    ready = derive_status(
        model(status=loading),
        deployment(1, ready=1),
        [],
        endpoint=None,
        selector="a=b",
        gpu_resource_name=GPU,
        now=later,
    )
    times = {c["type"]: c["lastTransitionTime"] for c in ready["conditions"]}
    assert times == {
        "Ready": "2026-06-01T12:05:00Z",
        "Progressing": "2026-06-01T12:05:00Z",
        "Degraded": "2026-06-01T12:00:00Z",
    }
    assert "endpoint" not in ready


def test_status_patch_is_minimal() -> None:
    current = status_of(model(), deployment(1), [])
    assert status_patch(current, current) == {}
    assert status_patch(current, dict(current)) == {}
    ready = status_of(model(status=current), deployment(1, ready=1), [])
    patch = status_patch(current, ready)
    assert set(patch) == {"phase", "readyReplicas", "ready", "conditions"}
    without_endpoint = {k: v for k, v in current.items() if k != "endpoint"}
    assert status_patch(current, without_endpoint) == {"endpoint": None}
    assert status_patch(None, current) == current


def test_summaries_are_small_and_complete() -> None:
    summary = summarize_pod(pod("Pending", unschedulable=f"Insufficient {GPU}", name="x"))
    assert summary == {
        "name": "x",
        "phase": "Pending",
        "ready": False,
        "terminating": False,
        "waiting": [],
        "unschedulable": f"Insufficient {GPU}",
        "unschedulable_since": "2026-06-01T12:00:00Z",
    }
    assert summarize_pod({})["phase"] == "Pending"
