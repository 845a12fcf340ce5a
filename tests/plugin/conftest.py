"""Fixtures of the `kubectl mg` tests: an emulated cluster with authentication, RBAC denials and the
service proxy (emulator_proxy.py); a fake or real model behind it; the plugin run as a process.

The plugin runs as a real `kubectl-mg` process (through a pseudo-terminal for interactive chat)
while the emulator serves from the tests' event loop: processes are awaited with asyncio, and
pexpect scripts run in a worker thread.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from model_garden_operator.config import OperatorConfig
from tests.emulator.cluster import Cluster
from tests.emulator.conftest import Operator
from tests.plugin.emulator_proxy import ProxyingEmulator, running_proxy_cluster
from tests.plugin.fake_model import FakeModel, running_fake_model


@dataclass
class Upstream:
    """The model behind the Service: the fake (fast) or the real runtime on the demo model (slow)."""

    url: str
    fake: FakeModel | None


@pytest.fixture(params=["fake", pytest.param("runtime", marks=pytest.mark.slow)])
async def upstream(request: pytest.FixtureRequest) -> AsyncIterator[Upstream]:
    if request.param == "runtime":
        yield Upstream(request.getfixturevalue("runtime_server").url, None)
        return
    async with running_fake_model() as fake:
        yield Upstream(fake.url, fake)


@pytest.fixture()
async def fake_model() -> AsyncIterator[FakeModel]:
    async with running_fake_model() as fake:
        yield fake


@pytest.fixture()
async def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    async with running_proxy_cluster(tmp_path) as emulated:
        monkeypatch.setenv("KUBECONFIG", str(emulated.kubeconfig))  # for the operator's login
        yield emulated


@pytest.fixture()
def emu(cluster: Cluster) -> ProxyingEmulator:
    assert isinstance(cluster.emu, ProxyingEmulator)
    return cluster.emu


@pytest.fixture()
async def operator(cluster: Cluster) -> AsyncIterator[Operator]:
    running = Operator(OperatorConfig())
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture()
def mg_env(cluster: Cluster, tmp_path: Path) -> dict[str, str]:
    """The environment of a person whose kubeconfig points at the emulated cluster."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_GARDEN_", "KUBERNETES_"))}
    return {**env, "KUBECONFIG": str(cluster.kubeconfig), "HOME": str(home), "NO_COLOR": "1", "TERM": "xterm"}


@pytest.fixture()
def tiny_png(tmp_path: Path) -> Path:
    from tests.unit.test_image_refs import PNG_1x1

    path = tmp_path / "cat.png"
    path.write_bytes(PNG_1x1)
    return path
