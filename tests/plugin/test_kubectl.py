"""kubectl finds the plugin on PATH, and the plugin stays light (no vLLM, no Kopf, no aiohttp)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.support.runtime import BIN

KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_plugin_list_shows_kubectl_mg() -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    listed = subprocess.run(
        [str(KUBECTL), "plugin", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert str(BIN / "kubectl-mg") in listed.stdout, listed.stdout + listed.stderr
    helped = subprocess.run(
        [str(KUBECTL), "mg", "--help"], env=env, capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0, helped.stderr
    assert "Usage: kubectl mg [OPTIONS] COMMAND" in helped.stdout
    for command in ("chat", "generate", "deploy", "list", "status", "delete"):
        assert f"  {command} " in helped.stdout


def test_the_plugin_imports_no_engine_and_no_operator_runtime() -> None:
    code = (
        "import sys; import model_garden_operator.plugin.cli as cli; "
        "from model_garden_operator.plugin import api, chat, deploy, kubeconfig, models, proxy, render; "
        "heavy = {'vllm', 'torch', 'kopf', 'aiohttp', 'kubernetes', 'transformers'}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]"


def test_usage_mistakes_exit_2_with_click_s_message() -> None:
    result = subprocess.run(
        [str(BIN / "kubectl-mg"), "deploy", "demo"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "Missing option '--model'" in result.stderr and "Traceback" not in result.stderr
