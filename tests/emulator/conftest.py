"""Fixtures of the operator-vs-emulator tier: an emulated cluster and the real operator running
in-process against it (the same event loop, so tests read the emulator's state directly).

Every operator run gets a fresh Kopf registry (`make_registry()`), and logs in through the
operator's own login handler from `KUBECONFIG`, which points at the emulator.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import kopf
import pytest

from model_garden_operator.config import OperatorConfig
from model_garden_operator.handlers import make_registry
from tests.emulator.cluster import Cluster, running_cluster

T = TypeVar("T")


async def wait_for(predicate: Callable[[], T], timeout: float = 5.0, what: str = "condition") -> T:
    """Poll `predicate` until it is truthy and return its value; TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)
    return value


class Operator:
    """The real operator (`kopf.operator`, our registry) in a thread with its own event loop.

    A thread, as `kopf.testing.KopfRunner` does, because on exit Kopf cancels every task of its
    loop created after it started: in the tests' loop that would include the test itself.
    The operator reaches the emulator over HTTP like it reaches a cluster.
    """

    def __init__(self, config: OperatorConfig, namespaces: tuple[str, ...] = ()) -> None:
        self.config = config
        self.namespaces = namespaces
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.error: BaseException | None = None

    def _run(self, ready: threading.Event) -> None:
        try:
            asyncio.run(
                kopf.operator(
                    registry=make_registry(),
                    memo=kopf.Memo(config=self.config),
                    clusterwide=not self.namespaces,
                    namespaces=self.namespaces,
                    standalone=True,
                    stop_flag=self._stop,
                    ready_flag=ready,
                )
            )
        except BaseException as exc:  # noqa: BLE001 - reported by stop(); a thread tells no one else
            self.error = exc

    async def start(self) -> None:
        self._stop, ready = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="operator", daemon=True)
        self._thread.start()
        await wait_for(lambda: ready.is_set() or self.error, timeout=10, what="the operator to start")
        assert self.error is None, self.error

    async def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        thread, self._thread = self._thread, None
        await wait_for(lambda: not thread.is_alive(), timeout=15, what="the operator to stop")
        assert self.error is None, self.error

    async def restart(self) -> None:
        await self.stop()
        await self.start()


@pytest.fixture()
async def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path) as emulated:
        monkeypatch.setenv("KUBECONFIG", str(emulated.kubeconfig))
        yield emulated


@pytest.fixture()
def operator_config() -> OperatorConfig:
    return OperatorConfig()


@pytest.fixture()
async def operator(cluster: Cluster, operator_config: OperatorConfig) -> AsyncIterator[Operator]:
    running = Operator(operator_config)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
