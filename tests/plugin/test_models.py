"""Reading a model's status and waiting on it: the operator's vocabulary, as a person is told it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from model_garden_operator.plugin import models
from model_garden_operator.plugin.errors import ModelFailed, NotReady, WaitTimeout
from model_garden_operator.plugin.models import ModelState, hint, served_model_name, wait_until_serving
from model_garden_operator.status import IMAGE_PULL_REASONS
from tests.plugin.helpers import model_status
from tests.unit.factories import make_model


def with_status(phase: str | None, reason: str = "R", message: str = "m", **kwargs: Any) -> dict[str, Any]:
    obj = make_model("demo")
    obj["metadata"]["generation"] = 1
    if phase is not None:
        obj["status"] = model_status(phase, reason, message, **kwargs)
    return obj


def test_served_model_name_follows_the_operator() -> None:
    assert served_model_name(make_model("demo")) == "demo"
    assert served_model_name(make_model("demo", served_model_name="chat")) == "chat"
    # A spec the operator would refuse still names what it asked for.
    assert served_model_name(make_model("demo", served_model_name="chat", replicas=-1)) == "chat"


@pytest.mark.parametrize(
    ("phase", "reason", "serving", "summary"),
    [
        ("Ready", "ReplicasReady", True, "Ready (ReplicasReady: m)"),
        ("Degraded", "CrashLoopBackOff", True, "Degraded (CrashLoopBackOff: m)"),
        ("Loading", "ModelLoading", False, "Loading (ModelLoading: m)"),
        ("Failed", "InvalidSpec", False, "Failed (InvalidSpec: m)"),
        (None, "", False, "no status yet"),
    ],
)
def test_state(phase: str | None, reason: str, serving: bool, summary: str) -> None:
    state = ModelState.of(with_status(phase, reason))
    assert (state.serving, state.summary()) == (serving, summary)


def test_a_status_of_an_older_generation_is_no_status() -> None:
    obj = with_status("Ready", "ReplicasReady")
    obj["metadata"]["generation"] = 2  # the spec changed; the operator has not looked yet
    state = ModelState.of(obj)
    assert state.phase is None and not state.serving
    assert state.probably_serving  # the old pods still answer while the change rolls out
    assert state.hint() is not None and "is the model-garden operator running?" in (state.hint() or "")


def test_every_reason_the_operator_writes_for_trouble_has_a_hint() -> None:
    reasons = {"WaitingForGPUs", "Unschedulable", "CrashLoopBackOff", "InvalidSpec", "MissingSecret"}
    reasons |= set(IMAGE_PULL_REASONS) | {"ModelLoading", "ScaledToZero", "PodsPending"}
    for reason in reasons:
        text = hint(reason, "demo", "team")
        assert text and "{" not in text, reason
    assert hint("ReplicasReady", "demo", "team") is None
    assert "kubectl edit im demo -n team" in (hint("InvalidSpec", "demo", "team") or "")


@pytest.fixture()
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    slept: list[float] = []
    clock = [0.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(models.time, "sleep", sleep)
    monkeypatch.setattr(models.time, "monotonic", lambda: clock[0])
    yield slept


def scripted(*objs: dict[str, Any]) -> Any:
    it = iter(objs)
    last: list[dict[str, Any]] = []

    def fetch() -> dict[str, Any]:
        last[:] = [next(it, last[0] if last else objs[-1])]
        return last[0]

    return fetch


def test_wait_reports_progress_until_ready(no_sleep: list[float]) -> None:
    seen: list[tuple[str | None, float]] = []
    state = wait_until_serving(
        scripted(
            with_status(None), with_status("Pending", "PodsPending"), with_status("Ready", "ReplicasReady")
        ),
        timeout=60,
        progress=lambda s, elapsed: seen.append((s.phase, elapsed)),
    )
    assert state.phase == "Ready"
    assert seen == [(None, 0.0), ("Pending", 1.0), ("Ready", 2.0)]


def test_wait_for_ready_only_keeps_waiting_through_degraded(no_sleep: list[float]) -> None:
    fetch = scripted(with_status("Degraded", "ReplicasUnavailable"), with_status("Ready", "ReplicasReady"))
    assert wait_until_serving(fetch, timeout=60, progress=lambda *_: None).phase == "Ready"
    fetch = scripted(with_status("Degraded", "ReplicasUnavailable"))
    assert (
        wait_until_serving(fetch, timeout=60, progress=lambda *_: None, ready_only=False).phase == "Degraded"
    )


def test_wait_fails_with_the_reason(no_sleep: list[float]) -> None:
    fetch = scripted(
        with_status("Loading", "ModelLoading"), with_status("Failed", "CrashLoopBackOff", "exit 1")
    )
    with pytest.raises(ModelFailed) as failed:
        wait_until_serving(fetch, timeout=60, progress=lambda *_: None)
    assert str(failed.value).startswith(
        "model demo failed: CrashLoopBackOff: exit 1; the runtime keeps exiting"
    )
    with pytest.raises(NotReady, match="model demo is stopped"):
        wait_until_serving(
            scripted(with_status("Stopped", "ScaledToZero")), timeout=60, progress=lambda *_: None
        )


def test_wait_times_out_with_where_it_stands(no_sleep: list[float]) -> None:
    with pytest.raises(WaitTimeout) as timed_out:
        wait_until_serving(
            scripted(with_status("Pending", "WaitingForGPUs", "0/3 nodes")),
            timeout=90,
            progress=lambda *_: None,
        )
    assert str(timed_out.value).startswith(
        "model demo not Ready after 1m30s: Pending (WaitingForGPUs: 0/3 nodes); no node has enough free GPUs"
    )
    assert sum(no_sleep) == 90
