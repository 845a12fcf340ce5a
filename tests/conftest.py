"""Fixtures shared by every tier: the tiny models (built once, cached under the pytest cache)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.runtime import ENGINE_ENV, free_port, running_server, serve_model_argv

for _key, _value in ENGINE_ENV.items():
    os.environ.setdefault(_key, _value)

# Bump when the demo model's recipe changes, so cached copies are rebuilt.
DEMO_MODEL_VERSION = "1"


def _cached_demo_model(config: pytest.Config, name: str, **kwargs: int) -> Path:
    from model_garden.demo_model import create_demo_model

    directory = config.cache.mkdir(f"model-garden-models-v{DEMO_MODEL_VERSION}") / name
    if not (directory / "config.json").is_file():
        create_demo_model(directory, **kwargs)
    return directory


@pytest.fixture(scope="session")
def demo_model_dir(pytestconfig: pytest.Config) -> Path:
    """The tiny random Llama chat model (what `model-garden create-demo-model` writes)."""
    return _cached_demo_model(pytestconfig, "demo")


@pytest.fixture(scope="session")
def second_model_dir(pytestconfig: pytest.Config) -> Path:
    """Another tiny model with different weights, for load -> unload -> load tests."""
    return _cached_demo_model(pytestconfig, "demo-seed-1", seed=1)


@pytest.fixture(scope="session")
def runtime_server(demo_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """`model-garden serve-model` on the demo model, shared by every test that only sends requests."""
    port = free_port()
    log = tmp_path_factory.mktemp("runtime") / "serve-model.log"
    with running_server(
        serve_model_argv(demo_model_dir, port, "--served-model-name", "demo"), port, log
    ) as srv:
        yield srv
