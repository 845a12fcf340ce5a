#!/usr/bin/env python
"""Operator benchmark: a burst of InferenceModels against the emulated Kubernetes API.

Runs the emulator of tests/emulator in this process, starts `model-garden-operator` as a
subprocess with a kubeconfig pointing at it, creates N models at once (300 by default) and prints:

- the time until every model has its Deployment, its Service and a status;
- writes per new model to InferenceModels, Deployments and Services together (target <= 4),
  and Kubernetes Events separately;
- writes per model on an idle resync (target 0): the operator is restarted, so every model goes
  through its resume handler again;
- the operator's peak RSS (VmHWM from /proc, target <= 150 MB), for each of the two runs.

    .venv/bin/python bench/operator_bench.py [--models 300] [--namespaces 3]

A script a person runs, not part of CI. Writes are counted from the emulator's request log:
every POST/PUT/PATCH/DELETE the operator sent (Kopf's and its own client's), retries included.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # a script, not a package: tests/ holds the emulator

from tests.emulator.cluster import DEPLOYMENTS, IM, SERVICES, TEST_AGENT, Cluster, running_cluster  # noqa: E402
from tests.unit.factories import make_model  # noqa: E402

TARGET_WRITES_PER_MODEL = 4
TARGET_RSS_MB = 150


class OperatorProcess:
    """`model-garden-operator` in a subprocess, its log in a file."""

    def __init__(self, kubeconfig: Path, log: Path) -> None:
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "MODEL_GARDEN_LOG_LEVEL": "WARNING",
            "MODEL_GARDEN_OPERATOR_HEALTH_PORT": "0",
        }
        script = Path(sys.executable).with_name("model-garden-operator")
        self.log = log.open("ab")
        self.proc = subprocess.Popen([str(script)], env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc")

    async def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while self.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if self.proc.poll() is None:
            self.proc.kill()
        self.log.close()


async def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.2)


def operator_writes(cluster: Cluster, since: int) -> tuple[int, int, int]:
    """Writes by the operator since `since`: (to models, Deployments and Services; to Events; to
    NetworkPolicies). The target counts the first only; the other two are reported beside it."""
    writes = [w for w in cluster.emu.writes(since) if not w.agent.startswith(TEST_AGENT)]
    events = sum(1 for w in writes if "/events" in w.path)
    policies = sum(1 for w in writes if "/networkpolicies" in w.path)
    return len(writes) - events - policies, events, policies


def write_breakdown(cluster: Cluster, since: int) -> dict[str, int]:
    """Operator writes since `since`, by method and resource (with its subresource, if any)."""
    counts: dict[str, int] = {}
    for write in cluster.emu.writes(since):
        if write.agent.startswith(TEST_AGENT):
            continue
        parts = write.path.strip("/").split("/")
        at = parts.index("namespaces") if "namespaces" in parts else -2
        resource = "/".join(parts[at + 2 : at + 3] + parts[at + 4 : at + 5])
        key = f"{write.method} {resource}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def all_reconciled(cluster: Cluster, names: list[tuple[str, str]]) -> bool:
    objects = cluster.emu.objects
    for namespace, name in names:
        for resource in (DEPLOYMENTS, SERVICES, IM):
            key = (resource, namespace, name)
            if key not in objects or objects[key].deleted:
                return False
        if "status" not in objects[IM, namespace, name].raw:
            return False
    return True


def resumed(cluster: Cluster, since: int, names: list[tuple[str, str]]) -> bool:
    # The resume handler reads each model's Service last: seeing them all means every pass ran.
    seen = {e.path for e in cluster.emu.log[since:] if e.method == "GET" and "/services/" in e.path}
    return all(f"/api/v1/namespaces/{ns}/services/{name}" in seen for ns, name in names)


async def settle(cluster: Cluster, quiet: float = 2.0, timeout: float = 120) -> None:
    await wait_for(lambda: cluster.emu.quiet_for(quiet), timeout, "the operator to go quiet")


async def bench(models: int, namespaces: int, tmp: Path) -> int:
    async with running_cluster(tmp) as cluster:
        spaces = [f"bench-{i}" for i in range(namespaces)]
        for namespace in spaces:
            await cluster.create_namespace(namespace)
        names = [(spaces[i % namespaces], f"model-{i:03d}") for i in range(models)]

        operator = OperatorProcess(cluster.kubeconfig, tmp / "operator.log")
        since = len(cluster.emu.log)
        await wait_for(
            lambda: any(e.query.get("watch") and IM.plural in e.path for e in cluster.emu.log[since:]),
            60,
            "the operator to watch InferenceModels",
        )

        mark = len(cluster.emu.log)
        started = time.monotonic()
        await asyncio.gather(*(cluster.create(IM, make_model(n, namespace=ns)) for ns, n in names))
        created = time.monotonic()
        await wait_for(lambda: all_reconciled(cluster, names), 600, "every model to be reconciled")
        done = time.monotonic()
        await settle(cluster)
        new_writes, new_events, new_policies = operator_writes(cluster, mark)
        breakdown = write_breakdown(cluster, mark)
        first_rss = operator.peak_rss_mb()
        await operator.stop()

        mark = len(cluster.emu.log)
        operator = OperatorProcess(cluster.kubeconfig, tmp / "operator.log")
        resync_started = time.monotonic()
        await wait_for(lambda: resumed(cluster, mark, names), 600, "every model to resume")
        resync_done = time.monotonic()
        await settle(cluster)
        resync_writes, resync_events, resync_policies = operator_writes(cluster, mark)
        second_rss = operator.peak_rss_mb()
        await operator.stop()

    per_model = new_writes / models
    rows = [
        (
            "models created at once",
            f"{models} in {namespaces} namespaces ({created - started:.1f} s to POST)",
        ),
        ("time to Deployment+Service+status", f"{done - started:.1f} s for all {models}"),
        (
            "writes per new model",
            f"{per_model:.2f} to models/Deployments/Services (target <= {TARGET_WRITES_PER_MODEL}), "
            f"{new_events / models:.2f} Events, {new_policies / models:.2f} NetworkPolicies",
        ),
        (
            "idle resync (operator restart)",
            f"{resync_writes + resync_policies} writes + {resync_events} Events for {models} models "
            "(target 0), "
            f"resumed in {resync_done - resync_started:.1f} s",
        ),
        (
            "operator peak RSS",
            f"{first_rss:.0f} MB burst, {second_rss:.0f} MB resync (target <= {TARGET_RSS_MB} MB)",
        ),
    ]
    rows.append(
        ("new-model writes by kind", ", ".join(f"{k} {n / models:.2f}" for k, n in breakdown.items()))
    )
    for label, value in rows:
        print(f"{label + ':':<36}{value}")
    ok = per_model <= TARGET_WRITES_PER_MODEL and resync_writes + resync_policies + resync_events == 0
    return 0 if ok and max(first_rss, second_rss) <= TARGET_RSS_MB else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=300)
    parser.add_argument("--namespaces", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="operator-bench-") as tmp:
        return asyncio.run(bench(args.models, args.namespaces, Path(tmp)))


if __name__ == "__main__":
    raise SystemExit(main())
