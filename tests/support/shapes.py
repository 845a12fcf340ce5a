"""Compare JSON answers by shape: keys, value types, list structure; not the generated text."""

from __future__ import annotations

from typing import Any


def shape(value: Any) -> Any:
    """A structural fingerprint: dicts keep their keys, lists their items' shapes, scalars their type."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [shape(item) for item in value]
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def differences(ours: Any, theirs: Any, path: str = "$") -> list[str]:
    """Human-readable places where two shapes differ (empty when they match)."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found = []
        for key in sorted(set(ours) | set(theirs)):
            if key not in ours:
                found.append(f"{path}.{key}: missing in ours")
            elif key not in theirs:
                found.append(f"{path}.{key}: extra in ours")
            else:
                found.extend(differences(ours[key], theirs[key], f"{path}.{key}"))
        return found
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            return [f"{path}: {len(ours)} items in ours, {len(theirs)} in theirs"]
        return [
            d
            for i, (a, b) in enumerate(zip(ours, theirs, strict=True))
            for d in differences(a, b, f"{path}[{i}]")
        ]
    return [] if ours == theirs else [f"{path}: {ours!r} in ours, {theirs!r} in theirs"]


def sse_data(body: str) -> list[str]:
    """The `data:` payloads of an SSE body, split on the blank line between events.

    Not line by line: generated text may hold U+2028 or U+0085, which str.splitlines-style readers
    (httpx's iter_lines among them) take for line ends inside an event's JSON.
    """
    events = [event for event in body.split("\n\n") if event.strip()]
    assert all(event.startswith("data: ") for event in events), events
    return [event.removeprefix("data: ") for event in events]
