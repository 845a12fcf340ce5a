"""Helpers of the `kubectl mg` tests: run the plugin as a process, put models in the emulator."""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import dataclass
from typing import Any

import pexpect

from model_garden_operator.builders import build_service
from model_garden_operator.config import OperatorConfig
from tests.emulator.cluster import IM, SERVICES, Cluster
from tests.plugin.emulator_proxy import ProxyingEmulator
from tests.support.runtime import BIN
from tests.unit.factories import make_model

MG = str(BIN / "kubectl-mg")
NS = "default"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


async def run_mg(env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 60) -> Result:
    """`kubectl-mg ARGS` to completion, without blocking the emulator's event loop."""
    process = await asyncio.create_subprocess_exec(
        MG,
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode() if stdin else None), timeout)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


def spawn_mg(env: dict[str, str], *args: str, timeout: float = 30) -> pexpect.spawn:
    """`kubectl-mg ARGS` in a pseudo-terminal (drive it from a thread: asyncio.to_thread)."""
    return pexpect.spawn(MG, list(args), env=env, encoding="utf-8", timeout=timeout, dimensions=(40, 200))


def one_line_error(result: Result) -> str:
    """The single `error: ...` line of a failed command (and no traceback)."""
    assert result.code != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# --- models in the emulated cluster without the operator --------------------------------------
def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def model_status(
    phase: str,
    reason: str,
    message: str,
    *,
    ready: int = 1,
    desired: int = 1,
    generation: int = 1,
    name: str = "demo",
) -> dict[str, Any]:
    """A status as the operator writes it for `phase` (status.py's table)."""
    failed, serving = phase == "Failed", phase in ("Ready", "Degraded")
    conditions = [
        ("Ready", serving, reason),
        ("Progressing", phase in ("Pending", "Loading"), reason),
        (
            "Degraded",
            failed or phase == "Degraded",
            reason if failed or phase == "Degraded" else "AsExpected",
        ),
    ]
    return {
        "phase": phase,
        "replicas": desired,
        "readyReplicas": ready,
        "ready": f"{ready}/{desired}",
        "observedGeneration": generation,
        "endpoint": f"http://{name}.{NS}.svc.cluster.local/v1",
        "conditions": [
            {
                "type": ctype,
                "status": "True" if on else "False",
                "reason": why,
                "message": message if why == reason else "no problem found",
                "lastTransitionTime": _now(),
                "observedGeneration": generation,
            }
            for ctype, on, why in conditions
        ],
    }


def put_model(
    cluster: Cluster,
    name: str = "demo",
    *,
    phase: str = "Ready",
    reason: str = "ReplicasReady",
    message: str = "1/1 replicas ready",
    ready: int = 1,
    backend: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """An InferenceModel, its Service and a status, as if the operator had reconciled it."""
    spec.setdefault("model", "/models/demo")
    spec.setdefault("accelerator", "cpu")
    obj = cluster.emu.do_create(IM, NS, make_model(name, **spec))
    service = build_service(obj, OperatorConfig())
    cluster.emu.do_create(SERVICES, NS, service)
    set_phase(cluster, name, phase, reason, message, ready=ready)
    if backend is not None:
        assert isinstance(cluster.emu, ProxyingEmulator)
        cluster.emu.serve(NS, name, backend)
    return obj


def set_phase(cluster: Cluster, name: str, phase: str, reason: str, message: str, *, ready: int = 1) -> None:
    desired = int((cluster.model(NS, name) or {}).get("spec", {}).get("replicas", 1))
    ready = ready if phase in ("Ready", "Degraded") else 0
    cluster.emu.write_status(
        IM, NS, name, model_status(phase, reason, message, ready=ready, desired=desired, name=name)
    )
