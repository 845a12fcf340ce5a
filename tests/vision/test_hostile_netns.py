"""The server-level hostile-input suite for image URLs, inside a network namespace with only loopback.

`unshare -mn` (root) gives the suite its own network and mount namespaces: `lo` is brought up and
given the addresses an attacker would aim at (169.254.169.254, 10.1.2.3, 192.168.1.1, 172.16.0.1,
100.64.0.1, fd00::1), and a private /etc/hosts makes names resolve to them through the system
resolver (evil.test -> 127.0.0.1, metadata.test -> 169.254.169.254, ...). Nothing can leave the
machine, and a recording server listening on every one of those addresses would see any connection
the policy let through. The cases live in hostile_in_netns.py, run by a pytest inside the namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.runtime import engine_env

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
# Addresses put on the namespace's loopback, and names the namespace's /etc/hosts gives them.
ADDRESSES = ("169.254.169.254/32", "10.1.2.3/32", "192.168.1.1/32", "172.16.0.1/32", "100.64.0.1/32")
ADDRESSES6 = ("fd00::1/128",)
HOSTS = {"evil.test": "127.0.0.1", "metadata.test": "169.254.169.254", "internal.test": "10.1.2.3"}


def _namespaces_available() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    probe = subprocess.run(["unshare", "-mn", "true"], capture_output=True)
    return probe.returncode == 0


def test_hostile_image_urls_in_a_network_namespace(vision_model_dir: Path, tmp_path: Path) -> None:
    if not _namespaces_available():
        pytest.skip("needs root and unshare -mn (network and mount namespaces)")
    hosts = tmp_path / "hosts"
    hosts.write_text(
        Path("/etc/hosts").read_text() + "".join(f"{addr} {name}\n" for name, addr in HOSTS.items())
    )
    setup = [
        "set -e",
        "mount --make-rprivate /",
        f"mount --bind {hosts} /etc/hosts",
        "ip link set lo up",
        *(f"ip addr add {address} dev lo" for address in ADDRESSES),
        *(f"ip -6 addr add {address} dev lo" for address in ADDRESSES6),
        f"exec {sys.executable} -m pytest -p no:cacheprovider -q -rA {HERE / 'hostile_in_netns.py'}",
    ]
    env = engine_env(
        MODEL_GARDEN_NETNS="1",
        MODEL_GARDEN_VISION_MODEL=str(vision_model_dir),
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
        HF_HUB_OFFLINE="1",
    )
    result = subprocess.run(
        ["unshare", "-mn", "sh", "-c", "\n".join(setup)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(result.stdout[-6000:])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and " skipped" not in result.stdout
