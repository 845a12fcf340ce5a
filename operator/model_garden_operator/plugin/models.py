"""Reading an InferenceModel's status, what to do about its failures, and waiting until it serves.

The phase and condition vocabulary is the operator's (status.py, the design notes' table): phase
Ready or Degraded serves; Failed needs a change from a person; Pending and Loading are on the way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from model_garden_common.constants import DEFAULT_MAX_IMAGE_BYTES
from model_garden_operator.plugin.errors import ModelFailed, NotReady, WaitTimeout
from model_garden_operator.spec import InvalidSpecError, parse_model

SERVING_PHASES: Final = frozenset({"Ready", "Degraded"})
# After this long with no status at all, waiting says that the operator may not be running.
NO_STATUS_WARNING_SECONDS: Final = 30.0

# What a person can do about each condition reason (status.py and the reconciler write them).
_HINTS: Final[dict[str, str]] = {
    "WaitingForGPUs": "no node has enough free GPUs for its tensor parallel size: free GPUs, add GPU nodes, "
    "or redeploy with a smaller --tensor-parallel-size (kubectl describe pod -l {selector} -n {ns})",
    "Unschedulable": "the scheduler cannot place its pods: check node selectors, tolerations and resource "
    "requests (kubectl describe pod -l {selector} -n {ns})",
    "ImagePullBackOff": "the runtime image cannot be pulled: check spec.image, the operator's "
    "imagePullSecrets and that nodes can reach the registry (kubectl describe pod -l {selector} -n {ns})",
    "CrashLoopBackOff": "the runtime keeps exiting: read its log (kubectl logs deploy/{name} -n {ns} "
    "--previous); common causes are too little GPU memory (lower --gpu-memory-utilization or "
    "--max-model-len), a gated model without a token Secret, an unsupported quantization",
    "InvalidSpec": "fix the field named above (kubectl edit im {name} -n {ns}); `kubectl explain "
    "inferencemodel.spec` documents every field",
    "MissingSecret": "create the Secret named above (kubectl create secret generic NAME -n {ns} "
    "--from-literal=HF_TOKEN=...); the operator retries on its own",
    "ModelLoading": "the model is downloading and loading; large models take minutes (kubectl logs -f "
    "deploy/{name} -n {ns})",
    "ScaledToZero": "it is stopped: kubectl scale im {name} -n {ns} --replicas=1",
    "ReplicasUnavailable": "some replicas are not ready yet (kubectl get pods -l {selector} -n {ns})",
    "PodsPending": "its pods are starting (kubectl get pods -l {selector} -n {ns})",
    "ContainerCreating": "its pods are starting (kubectl get pods -l {selector} -n {ns})",
    "NoStatus": "no status yet: is the model-garden operator running? (kubectl get pods -A -l "
    "app.kubernetes.io/component=operator)",
}
_HINTS["ErrImagePull"] = _HINTS["InvalidImageName"] = _HINTS["ImagePullBackOff"]


def hint(reason: str | None, name: str, namespace: str) -> str | None:
    """What to do about `reason`, or None when there is nothing to do."""
    template = _HINTS.get(reason or "")
    if template is None:
        return None
    selector = f"app.kubernetes.io/instance={name}"
    return template.format(name=name, ns=namespace, selector=selector)


def max_image_bytes(obj: Mapping[str, Any]) -> int:
    """The largest image the model's runtime takes: spec.vision.maxImageBytes, else the runtime's default."""
    try:
        return parse_model(obj).vision.max_image_bytes
    except InvalidSpecError:
        return DEFAULT_MAX_IMAGE_BYTES  # the operator reports the spec; the runtime's limit still holds


def served_model_name(obj: Mapping[str, Any]) -> str:
    """The name the runtime answers to (`model` in requests): spec.servedModelName, else the name."""
    try:
        return parse_model(obj).served_model_name
    except InvalidSpecError:
        return str((obj.get("spec") or {}).get("servedModelName") or obj["metadata"]["name"])


@dataclass(frozen=True)
class ModelState:
    """A model's status as a person reads it."""

    name: str
    namespace: str
    phase: str | None  # None: the operator has not written a status for this generation yet
    ready: str
    reason: str | None
    message: str
    last_phase: str | None = None  # the phase written, even for an older generation

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ModelState:
        meta, status = obj.get("metadata") or {}, obj.get("status") or {}
        spec = obj.get("spec") or {}
        conditions = {c.get("type"): c for c in status.get("conditions") or []}
        stale = (
            meta.get("generation") is not None
            and status.get("observedGeneration") is not None
            and int(status["observedGeneration"]) < int(meta["generation"])
        )
        phase = None if stale or not status.get("phase") else str(status["phase"])
        # A failure's reason is on Degraded; otherwise Ready's says where things stand.
        degraded, ready = conditions.get("Degraded") or {}, conditions.get("Ready") or {}
        chosen = degraded if degraded.get("status") == "True" else ready
        desired = spec.get("replicas", 1)
        return cls(
            name=str(meta.get("name")),
            namespace=str(meta.get("namespace")),
            phase=phase,
            ready=str(status.get("ready") or f"{status.get('readyReplicas', 0)}/{desired}"),
            reason=chosen.get("reason") if phase else None,
            message=str(chosen.get("message") or "") if phase else "",
            last_phase=status.get("phase"),
        )

    @property
    def serving(self) -> bool:
        return self.phase in SERVING_PHASES

    @property
    def probably_serving(self) -> bool:
        """Serving, or was before a spec change the operator has not reported on yet (a rollout
        keeps the old pods answering): good enough to chat, not to say a deploy is done."""
        return self.serving or (self.phase is None and self.last_phase in SERVING_PHASES)

    def summary(self) -> str:
        """`Loading (ModelLoading: pods are running; the model is loading)`."""
        if self.phase is None:
            return "no status yet"
        detail = ": ".join(part for part in (self.reason, self.message) if part)
        return f"{self.phase} ({detail})" if detail else self.phase

    def hint(self) -> str | None:
        return hint(self.reason if self.phase else "NoStatus", self.name, self.namespace)

    def failure(self) -> ModelFailed:
        text = f"model {self.name} failed: {self.reason}: {self.message}"
        if (advice := self.hint()) is not None:
            text += f"; {advice}"
        return ModelFailed(text)

    def not_ready(self, suggestion: str) -> NotReady:
        if self.phase == "Stopped":
            return NotReady(f"model {self.name} is stopped (replicas is 0): {self.hint()}")
        return NotReady(f"model {self.name} is not Ready: {self.summary()}; {suggestion}")


Progress = Callable[[ModelState, float], None]


def wait_until_serving(
    fetch: Callable[[], Mapping[str, Any]],
    *,
    timeout: float,
    progress: Progress,
    ready_only: bool = True,
    interval: float = 1.0,
) -> ModelState:
    """Poll the model until phase Ready (or Degraded unless `ready_only`); raise if it fails.

    `progress(state, elapsed)` is called after every poll. Failed raises ModelFailed with the
    reason from the conditions; the timeout raises WaitTimeout with the last state.
    """
    started = time.monotonic()
    while True:
        state = ModelState.of(fetch())
        elapsed = time.monotonic() - started
        progress(state, elapsed)
        if state.phase == "Ready" or (state.serving and not ready_only):
            return state
        if state.phase == "Failed":
            raise state.failure()
        if state.phase == "Stopped":
            raise state.not_ready("")
        if elapsed >= timeout:
            advice = state.hint() or f"kubectl mg status {state.name} -n {state.namespace}"
            raise WaitTimeout(
                f"model {state.name} not Ready after {format_seconds(timeout)}: {state.summary()}; {advice}"
            )
        time.sleep(min(interval, max(0.05, timeout - elapsed)))


def format_seconds(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s" if seconds else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
