"""Label and field selectors, as the API server evaluates them on list and watch.

Labels: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`, joined by commas.
Fields: `path=v`, `path==v`, `path!=v` over dotted paths (metadata.name, status.phase, ...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Split on commas outside parentheses ("a in (x,y),b" -> "a in (x,y)", "b").
_TERMS = re.compile(r",(?![^()]*\))")
_SET = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _terms(selector: str) -> list[str]:
    return [term.strip() for term in _TERMS.split(selector or "") if term.strip()]


def matches_labels(selector: str, labels: Mapping[str, str]) -> bool:
    for term in _terms(selector):
        if found := _SET.match(term):
            key, op, values = found.group(1), found.group(2), {v.strip() for v in found.group(3).split(",")}
            inside = key in labels and labels[key] in values
            if (op == "in") != inside:
                return False
        elif "!=" in term:
            key, value = (part.strip() for part in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (part.strip() for part in term.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def _field(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return "" if value is None else str(value)


def matches_fields(selector: str, obj: Mapping[str, Any]) -> bool:
    for term in _terms(selector):
        if "!=" in term:
            path, value = (part.strip() for part in term.split("!=", 1))
            if _field(obj, path) == value:
                return False
        else:
            path, value = (part.strip() for part in term.replace("==", "=").split("=", 1))
            if _field(obj, path) != value:
                return False
    return True
