"""kube.py's client against the emulator: retries, 404 as None, and a new login on 401."""

from __future__ import annotations

import kopf

from model_garden_operator.kube import DEPLOYMENTS, ApiError, Backoff, KubeClient
from tests.emulator.cluster import Cluster

FAST = Backoff(attempts=3, base=0.01)


def client(cluster: Cluster, relogins: list[str] | None = None) -> KubeClient:
    server = str(cluster.emu.url).rstrip("/")

    def relogin() -> kopf.ConnectionInfo:
        assert relogins is not None
        relogins.append("again")
        return kopf.ConnectionInfo(server=server, token="fresh")

    kube = KubeClient.connect(kopf.ConnectionInfo(server=server, token="stale"), relogin=relogin)
    kube._backoff = FAST
    return kube


async def test_retries_then_gives_up(cluster: Cluster) -> None:
    kube = client(cluster)
    try:
        cluster.emu.fail("GET", "/deployments/d$", 500, times=2)
        assert await kube.get(DEPLOYMENTS, "default", "d") is None  # third try: 404 -> None
        cluster.emu.fail("GET", "/deployments/d$", 503, times=3)
        try:
            await kube.get(DEPLOYMENTS, "default", "d")
        except ApiError as exc:
            assert exc.status == 503
        else:
            raise AssertionError("no ApiError after the retries")
    finally:
        await kube.close()


async def test_logs_in_again_on_401(cluster: Cluster) -> None:
    relogins: list[str] = []
    kube = client(cluster, relogins)
    try:
        cluster.emu.fail("GET", "/deployments/d$", 401, times=1)
        assert await kube.get(DEPLOYMENTS, "default", "d") is None
        assert relogins == ["again"]
        assert [e.status for e in cluster.emu.log if e.path.endswith("/deployments/d")] == [401, 404]
    finally:
        await kube.close()
