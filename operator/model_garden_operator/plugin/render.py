"""What the plugin prints: kubectl-style tables, `-o json|yaml`, ages, and the status report."""

from __future__ import annotations

import contextlib
import datetime
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from model_garden_operator.plugin.models import (
    NO_STATUS_WARNING_SECONDS,
    ModelState,
    Progress,
    format_seconds,
    served_model_name,
)

OUTPUT_FORMATS = ("json", "yaml", "wide")
_PHASE_STYLES = {"Ready": "green", "Degraded": "yellow", "Failed": "red", "Stopped": "dim"}


def emit(console: Console, *renderables: Any) -> None:
    """Print; off a terminal without the spaces rich pads table rows with (scripts read the lines)."""
    if console.is_terminal:
        console.print(*renderables)
        return
    with console.capture() as captured:
        console.print(*renderables)
    console.file.write("\n".join(line.rstrip() for line in captured.get().splitlines()) + "\n")


def dump(obj: Any, fmt: str) -> str:
    """`obj` as kubectl prints it with -o json (2-space indent) or -o yaml."""
    if fmt == "json":
        return json.dumps(obj, indent=2, ensure_ascii=False)
    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True).rstrip("\n")


def as_list(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": list(items)}


def _parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        when = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=datetime.UTC)


def age(text: str | None, now: datetime.datetime | None = None) -> str:
    """kubectl's short age: 45s, 3m20s, 17m, 5h30m, 2d4h, 40d, 3y."""
    when = _parse_time(text)
    if when is None:
        return "<unknown>"
    seconds = int(((now or datetime.datetime.now(datetime.UTC)) - when).total_seconds())
    seconds = max(seconds, 0)
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y"


def _table(*columns: str) -> Table:
    # kubectl's look: upper-case headers, no borders, columns separated by spaces.
    table = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 3, 0, 0), header_style="bold")
    for column in columns:
        table.add_column(column, no_wrap=True, overflow="ignore")
    return table


def _row(table: Table, *cells: str | Text) -> None:
    # Plain text, never markup: names, messages and model ids may hold brackets.
    table.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in cells))


def _phase(text: str | None) -> Text:
    return Text(text or "-", style=_PHASE_STYLES.get(text or "", ""))


def models_table(models: Sequence[Mapping[str, Any]], *, all_namespaces: bool, wide: bool) -> Table:
    columns = ["NAME", "MODEL", "TP", "QUANTIZATION", "READY", "PHASE", "ENDPOINT", "AGE"]
    if all_namespaces:
        columns.insert(0, "NAMESPACE")
    if wide:
        columns += ["SERVED-NAME", "ACCELERATOR", "REASON"]
    table = _table(*columns)
    for obj in models:
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        state = ModelState.of(obj)
        row: list[str | Text] = [
            meta["name"],
            str(spec.get("model", "")),
            str(spec.get("tensorParallelSize", 1)),
            str(spec.get("quantization") or "-"),
            state.ready,
            _phase(status.get("phase")),
            str(status.get("endpoint") or "-"),
            age(meta.get("creationTimestamp")),
        ]
        if all_namespaces:
            row.insert(0, str(meta.get("namespace", "")))
        if wide:
            row += [served_model_name(obj), str(spec.get("accelerator", "gpu")), state.reason or "-"]
        _row(table, *row)
    return table


# --- status ------------------------------------------------------------------------------------
_RELATED_KINDS = ("InferenceModel", "Deployment", "ReplicaSet", "Pod", "Service")


def related_events(
    events: Sequence[Mapping[str, Any]], name: str, pod_names: Sequence[str], limit: int
) -> list[Mapping[str, Any]]:
    """The model's Events and those of its Deployment, ReplicaSets, Pods and Service; newest last."""

    def about_us(event: Mapping[str, Any]) -> bool:
        involved = event.get("involvedObject") or {}
        kind, obj = involved.get("kind"), str(involved.get("name", ""))
        if kind not in _RELATED_KINDS:
            return False
        if kind == "Pod":
            return obj in pod_names
        if kind == "ReplicaSet":
            return obj.startswith(f"{name}-")
        return obj == name

    chosen = [e for e in events if about_us(e)]
    chosen.sort(key=lambda e: _event_time(e) or datetime.datetime.min.replace(tzinfo=datetime.UTC))
    return chosen[-limit:] if limit else []


def _event_time(event: Mapping[str, Any]) -> datetime.datetime | None:
    for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
        if when := _parse_time(event.get(key)):
            return when
    return _parse_time((event.get("metadata") or {}).get("creationTimestamp"))


def _event_age(event: Mapping[str, Any]) -> str:
    when = _event_time(event)
    return age(when.isoformat()) if when else "<unknown>"


def _pod_row(pod: Mapping[str, Any]) -> list[str]:
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    ready = sum(1 for c in containers if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in containers)
    waiting = next(
        (
            c["state"]["waiting"].get("reason", "")
            for c in containers
            if (c.get("state") or {}).get("waiting")
        ),
        "",
    )
    state = waiting or str(status.get("phase") or "Pending")
    if pod.get("metadata", {}).get("deletionTimestamp"):
        state = "Terminating"
    return [
        pod["metadata"]["name"],
        f"{ready}/{len(containers) or 1}",
        state,
        str(restarts),
        age(pod["metadata"].get("creationTimestamp")),
    ]


def print_status(
    console: Console,
    obj: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]] | None,
    events: Sequence[Mapping[str, Any]] | None,
) -> None:
    """The report of `kubectl mg status`: summary, conditions, pods, events, and what to do."""
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    state = ModelState.of(obj)
    summary = _table("", "")
    summary.show_header = False
    rows = [
        ("Name:", meta["name"]),
        ("Namespace:", str(meta.get("namespace", ""))),
        ("Model:", str(spec.get("model", ""))),
        ("Served as:", served_model_name(obj)),
        (
            "Accelerator:",
            f"{spec.get('accelerator', 'gpu')}, tensor parallel size {spec.get('tensorParallelSize', 1)}",
        ),
        ("Quantization:", str(spec.get("quantization") or "-")),
        ("Phase:", _phase(state.phase or "(no status yet)")),
        ("Replicas:", f"{state.ready} ready (desired {spec.get('replicas', 1)})"),
        ("Endpoint:", str(status.get("endpoint") or "-")),
        ("Age:", age(meta.get("creationTimestamp"))),
    ]
    for label, value in rows:
        _row(summary, label, value)
    emit(console, summary)

    conditions = status.get("conditions") or []
    if conditions:
        emit(console, "\n[bold]Conditions:[/bold]")
        table = _table("TYPE", "STATUS", "REASON", "AGE", "MESSAGE")
        for condition in conditions:
            _row(
                table,
                str(condition.get("type")),
                str(condition.get("status")),
                str(condition.get("reason") or "-"),
                age(condition.get("lastTransitionTime")),
                Text(str(condition.get("message") or "")),
            )
        table.columns[-1].no_wrap = False
        emit(console, table)

    emit(console, "\n[bold]Pods:[/bold]")
    if pods is None:
        emit(console, "  (not allowed to list pods)")
    elif not pods:
        emit(console, "  (none)")
    else:
        table = _table("NAME", "READY", "STATUS", "RESTARTS", "AGE")
        for pod in pods:
            _row(table, *_pod_row(pod))
        emit(console, table)

    emit(console, "\n[bold]Events:[/bold]")
    if events is None:
        emit(console, "  (not allowed to list events)")
    elif not events:
        emit(console, "  (none)")
    else:
        table = _table("LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE")
        for event in events:
            involved = event.get("involvedObject") or {}
            _row(
                table,
                _event_age(event),
                Text(str(event.get("type", "")), style="yellow" if event.get("type") == "Warning" else ""),
                str(event.get("reason", "")),
                f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
                Text(str(event.get("message", ""))),
            )
        table.columns[-1].no_wrap = False
        emit(console, table)

    advice = state.hint()
    if advice is not None and state.phase != "Ready":
        emit(console, f"\n[bold]What to do:[/bold] {advice}")
    elif state.serving:
        emit(console, f"\nChat with it: kubectl mg chat {meta['name']} -n {meta.get('namespace')}")


# --- waiting -----------------------------------------------------------------------------------
def _progress_text(state: ModelState, elapsed: float) -> str:
    detail = f" ({state.reason}: {state.message})" if state.reason and state.phase != "Ready" else ""
    phase = state.phase or "waiting for the operator"
    return f"{state.name}: {phase}, {state.ready} ready, {format_seconds(elapsed)}{detail}"


@contextlib.contextmanager
def progress_display(console: Console, name: str) -> Iterator[Progress]:
    """A live line on a terminal (phase, ready replicas, elapsed time); one line per change elsewhere."""
    warned = False

    def warn_once(state: ModelState, elapsed: float) -> None:
        nonlocal warned
        if state.phase is None and elapsed >= NO_STATUS_WARNING_SECONDS and not warned:
            warned = True
            console.print(f"[yellow]{state.hint()}[/yellow]", highlight=False)

    if console.is_terminal:
        with console.status(f"Waiting for {name} …") as status:

            def update(state: ModelState, elapsed: float) -> None:
                status.update(_progress_text(state, elapsed))
                warn_once(state, elapsed)

            yield update
        return

    last: tuple[str | None, str, str | None] | None = None

    def report(state: ModelState, elapsed: float) -> None:
        nonlocal last
        key = (state.phase, state.ready, state.reason)
        if key != last:
            last = key
            console.print(_progress_text(state, elapsed), highlight=False, soft_wrap=True)
        warn_once(state, elapsed)

    yield report
