"""InferenceModel status from what the cluster shows: pure functions, no I/O.

The reconciler hands in the model, its Deployment and summaries of its Pods; out comes the status
dict of the design notes' "Status vocabulary" (phase, conditions, replica counts, endpoint, the
scale selector). `status_patch` then reduces it to the keys that changed, so an unchanged model
costs no write.

Pods are summarised first (`summarize_pod`) because the operator keeps them in a Kopf index:
a few strings per pod instead of whole pod bodies keeps its memory flat on busy clusters.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypedDict

Phase = Literal["Pending", "Loading", "Ready", "Degraded", "Failed", "Stopped"]

CONDITION_TYPES: Final = ("Ready", "Progressing", "Degraded")

# Waiting reasons of a container that mean the image will not arrive without a change.
IMAGE_PULL_REASONS: Final = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName"})
CRASH_REASONS: Final = frozenset({"CrashLoopBackOff"})
# A pod the scheduler cannot place for this long turns the model from Pending into Failed.
DEFAULT_UNSCHEDULABLE_TIMEOUT: Final = datetime.timedelta(minutes=15)


class PodSummary(TypedDict):
    """What status derivation needs from one Pod."""

    name: str
    phase: str
    ready: bool
    terminating: bool
    # (reason, message) of every container that waits: CrashLoopBackOff, ImagePullBackOff, ...
    waiting: list[tuple[str, str]]
    # The scheduler's message while the pod is Unschedulable, else None.
    unschedulable: str | None
    unschedulable_since: str | None


@dataclass(frozen=True)
class Problem:
    """Why a model cannot work as specified: becomes phase Failed with this reason and message."""

    reason: str
    message: str


@dataclass(frozen=True)
class Assessment:
    phase: Phase
    reason: str
    message: str
    progressing: bool


def summarize_pod(pod: Mapping[str, Any]) -> PodSummary:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conditions.get("Ready", {}).get("status") == "True"
    scheduled = conditions.get("PodScheduled", {})
    unschedulable = scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable"
    waiting: list[tuple[str, str]] = []
    for container in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        state = (container.get("state") or {}).get("waiting")
        if state and state.get("reason"):
            waiting.append((str(state["reason"]), str(state.get("message") or "")))
    return PodSummary(
        name=str(meta.get("name", "")),
        phase=str(status.get("phase") or "Pending"),
        ready=ready,
        terminating=bool(meta.get("deletionTimestamp")),
        waiting=waiting,
        unschedulable=str(scheduled.get("message") or "Unschedulable") if unschedulable else None,
        unschedulable_since=scheduled.get("lastTransitionTime") if unschedulable else None,
    )


def _parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def _first(pods: Iterable[PodSummary], reasons: frozenset[str]) -> tuple[str, str, str] | None:
    """(pod name, reason, message) of the first pod with a container waiting for one of `reasons`."""
    for pod in pods:
        for reason, message in pod["waiting"]:
            if reason in reasons:
                return pod["name"], reason, message
    return None


def assess(
    desired: int,
    deployment: Mapping[str, Any] | None,
    pods: Iterable[PodSummary],
    *,
    gpu_resource_name: str,
    now: datetime.datetime,
    unschedulable_timeout: datetime.timedelta = DEFAULT_UNSCHEDULABLE_TIMEOUT,
) -> Assessment:
    """The phase table of the design notes, applied to one Deployment and its pods."""
    if desired == 0:
        return Assessment("Stopped", "ScaledToZero", "replicas is 0", False)
    if deployment is None:
        return Assessment("Pending", "Creating", "creating the Deployment", True)

    live = [pod for pod in pods if not pod["terminating"]]
    dep_status = deployment.get("status") or {}
    ready = int(dep_status.get("readyReplicas") or 0)
    generation = (deployment.get("metadata") or {}).get("generation")
    observed = dep_status.get("observedGeneration")
    updated = dep_status.get("updatedReplicas")
    rolling = (generation is not None and observed is not None and int(observed) < int(generation)) or (
        updated is not None and int(updated) < desired
    )
    crash = _first(live, CRASH_REASONS)
    pull = _first(live, IMAGE_PULL_REASONS)

    if ready >= desired:
        if rolling:
            return Assessment("Ready", "RollingOut", f"{ready}/{desired} ready; rolling out a change", True)
        return Assessment("Ready", "ReplicasReady", f"{ready}/{desired} replicas ready", False)
    if ready > 0:
        if crash is not None:
            name, reason, message = crash
            return Assessment("Degraded", reason, f"{ready}/{desired} ready; pod {name}: {message}", False)
        if pull is not None:
            name, reason, message = pull
            return Assessment("Degraded", reason, f"{ready}/{desired} ready; pod {name}: {message}", False)
        return Assessment("Degraded", "ReplicasUnavailable", f"{ready}/{desired} replicas ready", True)

    # Nothing serves: a pull or crash failure needs a change from someone, so it is Failed.
    if pull is not None:
        name, reason, message = pull
        return Assessment(
            "Failed", reason, f"pod {name} cannot pull its image: {message}".rstrip(": "), False
        )
    if crash is not None:
        name, reason, message = crash
        return Assessment("Failed", reason, f"pod {name} is crash-looping: {message}".rstrip(": "), False)
    for pod in live:
        if pod["unschedulable"] is None:
            continue
        message = pod["unschedulable"]
        reason = "WaitingForGPUs" if gpu_resource_name in message else "Unschedulable"
        since = _parse_time(pod["unschedulable_since"])
        if since is not None and now - since > unschedulable_timeout:
            minutes = int(unschedulable_timeout.total_seconds() // 60)
            return Assessment("Failed", reason, f"unschedulable for over {minutes} min: {message}", False)
        return Assessment("Pending", reason, f"pod {pod['name']}: {message}", True)
    if any(pod["phase"] == "Running" for pod in live):
        return Assessment("Loading", "ModelLoading", "pods are running; the model is loading", True)
    waiting = next((reason for pod in live for reason, _ in pod["waiting"]), None)
    if waiting is not None:
        return Assessment("Pending", waiting, f"0/{desired} ready; containers are {waiting}", True)
    return Assessment("Pending", "PodsPending", f"0/{desired} ready; waiting for pods to start", True)


def _conditions(assessment: Assessment) -> dict[str, tuple[str, str, str]]:
    """(status, reason, message) per condition type, per the design notes' table."""
    phase, reason, message = assessment.phase, assessment.reason, assessment.message
    healthy = ("False", "AsExpected", "no problem found")
    if phase == "Ready":
        progressing = ("True", reason, message) if assessment.progressing else ("False", reason, message)
        return {"Ready": ("True", reason, message), "Progressing": progressing, "Degraded": healthy}
    if phase == "Degraded":
        state = "True" if assessment.progressing else "False"
        return {
            "Ready": ("True", "PartiallyReady", message),
            "Progressing": (state, reason, message),
            "Degraded": ("True", reason, message),
        }
    if phase == "Failed":
        return {
            "Ready": ("False", reason, message),
            "Progressing": ("False", reason, message),
            "Degraded": ("True", reason, message),
        }
    if phase == "Stopped":
        return {
            "Ready": ("False", reason, message),
            "Progressing": ("False", reason, message),
            "Degraded": healthy,
        }
    # Pending and Loading: on the way, nothing wrong yet.
    return {
        "Ready": ("False", reason, message),
        "Progressing": ("True", reason, message),
        "Degraded": healthy,
    }


def _timestamp(now: datetime.datetime) -> str:
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def derive_status(
    model: Mapping[str, Any],
    deployment: Mapping[str, Any] | None,
    pods: Iterable[PodSummary],
    *,
    endpoint: str | None,
    selector: str,
    gpu_resource_name: str,
    now: datetime.datetime,
    problem: Problem | None = None,
    unschedulable_timeout: datetime.timedelta = DEFAULT_UNSCHEDULABLE_TIMEOUT,
) -> dict[str, Any]:
    """The whole status the model should show now.

    `problem` (an invalid spec, a missing Secret) wins over anything the pods say. Conditions keep
    their `lastTransitionTime` from the current status when their status value did not change.
    """
    spec = model.get("spec") or {}
    desired = int(spec.get("replicas", 1))
    generation = (model.get("metadata") or {}).get("generation")
    if problem is not None:
        assessment = Assessment("Failed", problem.reason, problem.message, False)
    else:
        assessment = assess(
            desired,
            deployment,
            list(pods),
            gpu_resource_name=gpu_resource_name,
            now=now,
            unschedulable_timeout=unschedulable_timeout,
        )
    ready = int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0)

    previous = {c.get("type"): c for c in ((model.get("status") or {}).get("conditions") or [])}
    conditions: list[dict[str, Any]] = []
    for ctype, (cstatus, reason, message) in _conditions(assessment).items():
        before = previous.get(ctype) or {}
        kept = before.get("status") == cstatus and before.get("lastTransitionTime")
        condition: dict[str, Any] = {
            "type": ctype,
            "status": cstatus,
            "reason": reason,
            "message": message,
            "lastTransitionTime": kept or _timestamp(now),
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        conditions.append(condition)

    status: dict[str, Any] = {
        "phase": assessment.phase,
        "replicas": desired,
        "readyReplicas": min(ready, desired) if problem is None else 0,
        "selector": selector,
        "conditions": conditions,
    }
    status["ready"] = f"{status['readyReplicas']}/{desired}"
    if endpoint:
        status["endpoint"] = endpoint
    if generation is not None:
        status["observedGeneration"] = generation
    return status


def status_patch(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch for `status` holding only what changed; `{}` when nothing did.

    Keys the new status no longer has are removed (None); lists (conditions) are replaced whole,
    as a JSON merge patch does anyway.
    """
    current = current or {}
    patch: dict[str, Any] = {key: value for key, value in desired.items() if current.get(key) != value}
    patch.update({key: None for key in current if key not in desired})
    return patch
