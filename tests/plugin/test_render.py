"""What the plugin prints: ages as kubectl writes them, the events that concern a model, manifests."""

from __future__ import annotations

import datetime

import pytest
import yaml

from model_garden_operator.plugin.render import age, dump, related_events

NOW = datetime.datetime(2026, 11, 20, 12, 0, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (119, "119s"),
        (200, "3m20s"),
        (540, "9m"),
        (7000, "116m"),
        (5 * 3600 + 1800, "5h30m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (40 * 86400, "40d"),
        (3 * 365 * 86400, "3y"),
        (-5, "0s"),  # clocks disagree a little
    ],
)
def test_age_like_kubectl(seconds: int, text: str) -> None:
    stamp = (NOW - datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert age(stamp, NOW) == text
    assert age(None, NOW) == "<unknown>"


def _event(kind: str, name: str, minute: int) -> dict[str, object]:
    return {
        "involvedObject": {"kind": kind, "name": name},
        "lastTimestamp": f"2026-11-20T11:{minute:02d}:00Z",
        "reason": f"{kind}-{name}",
    }


def test_related_events_are_the_models_and_its_childrens_newest_last() -> None:
    events = [
        _event("Pod", "demo-abc-1", 5),
        _event("InferenceModel", "demo", 1),
        _event("ReplicaSet", "demo-abc", 3),
        _event("Deployment", "demo", 2),
        _event("Pod", "demo2-x", 4),  # another model's pod
        _event("InferenceModel", "demo2", 6),
        _event("ConfigMap", "demo", 7),
    ]
    chosen = related_events(events, "demo", ["demo-abc-1"], limit=10)
    assert [e["reason"] for e in chosen] == [
        "InferenceModel-demo",
        "Deployment-demo",
        "ReplicaSet-demo-abc",
        "Pod-demo-abc-1",
    ]
    assert [e["reason"] for e in related_events(events, "demo", ["demo-abc-1"], limit=2)] == [
        "ReplicaSet-demo-abc",
        "Pod-demo-abc-1",
    ]


def test_dump_keeps_the_manifests_order() -> None:
    obj = {"apiVersion": "v1", "kind": "X", "metadata": {"name": "é"}}
    assert dump(obj, "yaml").splitlines()[0] == "apiVersion: v1"
    assert yaml.safe_load(dump(obj, "yaml")) == obj
    assert dump(obj, "json").startswith('{\n  "apiVersion": "v1"') and "é" in dump(obj, "json")
