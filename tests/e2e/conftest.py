"""`e2e` tests need a real cluster: kind and a working Docker engine. Without them they skip."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache

import pytest


@cache
def missing_tools() -> str | None:
    """Why the e2e tests cannot run here, or None when they can."""
    for tool in ("kind", "docker", "kubectl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    try:
        subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=True)
    except (subprocess.SubprocessError, OSError):
        return "no working Docker engine (`docker info` fails)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    e2e = [item for item in items if item.get_closest_marker("e2e")]
    if not e2e:
        return
    reason = missing_tools()
    if reason is not None:
        for item in e2e:
            item.add_marker(pytest.mark.skip(reason=f"e2e: {reason}"))
