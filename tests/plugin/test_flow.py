"""A person's whole path with the real operator reconciling in the emulated cluster:
deploy --wait -> list -> status -> chat -> delete, the chat answered by the real runtime.

The test plays the cluster's controllers (a pod loading, then ready; the Deployment reporting
ready) and the Service's endpoints (the local runtime) while the plugin runs as a process.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.emulator.cluster import Cluster
from tests.emulator.conftest import Operator, wait_for
from tests.plugin.emulator_proxy import ProxyingEmulator
from tests.plugin.helpers import NS, run_mg
from tests.support.runtime import ServerProcess

pytestmark = pytest.mark.timeout(300)


async def _plugin_looked(emu: ProxyingEmulator, since: int) -> None:
    """Wait until the plugin has read the model again after log position `since`."""

    def looked() -> bool:
        return any(
            e.agent.startswith("kubectl-mg/") and e.method == "GET" and e.path.endswith("/demo")
            for e in emu.log[since:]
        )

    await wait_for(looked, timeout=10, what="the plugin to poll the model")


def rows(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.strip().splitlines()]


@pytest.mark.slow
async def test_deploy_list_status_chat_delete(
    runtime_server: ServerProcess,
    cluster: Cluster,
    emu: ProxyingEmulator,
    operator: Operator,
    mg_env: dict[str, str],
) -> None:
    deploy = asyncio.create_task(
        run_mg(mg_env, "deploy", "demo", "--model", "/models/demo", "--cpu", "--wait", "--timeout", "90s")
    )
    await wait_for(lambda: cluster.deployment(NS, "demo"), timeout=30, what="the operator's Deployment")
    cluster.add_pod(NS, "demo", "loading")
    await wait_for(lambda: cluster.phase(NS, "demo") == "Loading", timeout=30, what="phase Loading")
    await _plugin_looked(emu, since=len(emu.log))  # so its progress shows the Loading phase
    emu.serve(NS, "demo", runtime_server.url)  # the pod's runtime is the local one
    cluster.set_pod_state(NS, "demo-pod-0", "ready")
    cluster.deployment_ready(NS, "demo")
    deployed = await deploy
    assert deployed.code == 0, deployed.stderr
    assert deployed.stdout.strip() == "inferencemodel.modelgarden.io/demo created"
    progress = deployed.stderr
    assert "demo: Loading, 0/1 ready" in progress  # one line per change, off a terminal
    assert "demo is Ready (1/1) after " in progress and "kubectl mg chat demo -n default" in progress

    listed = await run_mg(mg_env, "list")
    assert rows(listed.stdout)[1][:7] == [
        "demo",
        "/models/demo",
        "1",
        "-",
        "1/1",
        "Ready",
        "http://demo.default.svc.cluster.local/v1",
    ]

    status = await run_mg(mg_env, "status", "demo")
    assert status.code == 0, status.stderr
    report = " ".join(status.stdout.split())
    assert "Phase: Ready" in report and "Ready True ReplicasReady" in report
    assert "demo-pod-0 1/1 Running 0" in report
    assert "Normal Created inferencemodel/demo Created NetworkPolicy, Deployment and Service" in report
    assert "Chat with it: kubectl mg chat demo -n default" in report

    chat = await run_mg(mg_env, "chat", "demo", "--max-tokens", "8", stdin="Hello from the flow test")
    assert chat.code == 0, chat.stderr
    [request] = emu.proxied
    assert request.body["model"] == "demo" and request.status == 200
    assert chat.stdout == request.deltas() + "\n" and chat.stdout.strip()

    deleted = await run_mg(mg_env, "delete", "demo")
    assert deleted.code == 0, deleted.stderr
    # The operator's owner references let the garbage collector take the children.
    await wait_for(lambda: cluster.model(NS, "demo") is None, timeout=30, what="the model to go")
    await wait_for(
        lambda: cluster.deployment(NS, "demo") is None and cluster.service(NS, "demo") is None,
        timeout=30,
        what="the children to be collected",
    )
    gone = await run_mg(mg_env, "list")
    assert gone.code == 0 and "No InferenceModels found in default namespace." in gone.stderr


async def test_deploy_wait_fails_with_the_reason(
    cluster: Cluster, operator: Operator, mg_env: dict[str, str]
) -> None:
    deploy = asyncio.create_task(
        run_mg(mg_env, "deploy", "demo", "--model", "m", "--image", "bad:tag", "--wait", "--timeout", "60s")
    )
    await wait_for(lambda: cluster.deployment(NS, "demo"), timeout=30, what="the operator's Deployment")
    cluster.add_pod(NS, "demo", "image-pull")
    result = await deploy
    assert result.code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: model demo failed: ImagePullBackOff: pod demo-pod-0 cannot pull its image")
    assert "the runtime image cannot be pulled" in last
    assert "Traceback" not in result.stderr


async def test_deploy_wait_times_out_with_where_it_stands(
    cluster: Cluster, operator: Operator, mg_env: dict[str, str]
) -> None:
    result = await run_mg(mg_env, "deploy", "demo", "--model", "m", "--wait", "--timeout", "3s")
    assert result.code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: model demo not Ready after 3s: Pending (")
