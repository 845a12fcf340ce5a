"""The kind end-to-end run (tests/e2e/kind-e2e.sh), and checks that keep the script honest where
it cannot run: it parses, and every file, image and name it relies on is what the chart and the
examples say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from model_garden_operator.config import DEFAULT_CPU_IMAGE
from tests.tools.helm import helm_binary

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "e2e" / "kind-e2e.sh"
TEXT = SCRIPT.read_text()
KIND_VALUES = ROOT / "charts" / "model-garden" / "ci" / "kind-values.yaml"


def script_var(name: str) -> str:
    match = re.search(rf"^{name}=(\S+)$", TEXT, re.MULTILINE)
    assert match, name
    return match[1]


@pytest.mark.e2e
@pytest.mark.timeout(5400)
def test_kind_end_to_end() -> None:
    env = {**os.environ, "HELM": str(helm_binary()), "PYTHON": sys.executable}
    subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, check=True, timeout=5400)


def test_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_script_files_exist() -> None:
    for path in re.findall(r"\b((?:examples|charts|tests)/[\w./-]+\.(?:yaml|py|sh))\b", TEXT):
        assert (ROOT / path).is_file(), path
    for dockerfile in ("Dockerfile.operator", "Dockerfile.runtime"):
        assert f"-f {dockerfile}" in TEXT


def test_script_images_are_the_kind_values_images() -> None:
    values = yaml.safe_load(KIND_VALUES.read_text())
    operator = f"{values['image']['repository']}:{values['image']['tag']}"
    runtime = f"{values['runtime']['cpuImage']['repository']}:{values['runtime']['cpuImage']['tag']}"
    assert script_var("operator_image") == operator
    assert script_var("runtime_image") == runtime
    assert values["image"]["pullPolicy"] == "Never"  # only what `kind load` put there
    assert script_var("kind_values") == str(KIND_VALUES.relative_to(ROOT))
    assert "--target cpu" in TEXT


def test_script_serves_the_cpu_example() -> None:
    smoke = yaml.safe_load((ROOT / "examples" / "cpu-smoke-test.yaml").read_text())
    assert script_var("model") == smoke["metadata"]["name"]
    jobs = [d for d in yaml.safe_load_all((ROOT / "examples" / "cpu-demo-model.yaml").read_text()) if d]
    (job,) = [d for d in jobs if d["kind"] == "Job"]
    assert f"job/{job['metadata']['name']}" in TEXT
    # The script swaps the example's image (the chart's default CPU image) for its own build.
    assert "from model_garden_operator.config import DEFAULT_CPU_IMAGE" in TEXT
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == DEFAULT_CPU_IMAGE


def test_script_uses_the_chart_names() -> None:
    # The release name makes the full name, which names the ServiceAccount and the opt-in role.
    release = script_var("release")
    assert release == "model-garden"
    assert '--clusterrole="$release-service-proxy"' in TEXT
    assert 'serviceaccount:$operator_ns:$release"' in TEXT
    assert "pod-security.kubernetes.io/enforce=restricted" in TEXT
