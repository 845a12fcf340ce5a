"""Fixtures of the vision tests: the tiny Idefics3 (built once, cached under the pytest cache), a
recording image server, and resolvers to inject (there is no DNS here)."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import pytest

from model_garden.vision.addresses import IPAddress
from tests.support.image_server import ImageServer

# Bump when demo_vision_model's recipe changes, so cached copies are rebuilt.
DEMO_VISION_MODEL_VERSION = "1"


@pytest.fixture(scope="session")
def vision_model_dir(pytestconfig: pytest.Config) -> Path:
    """The tiny random Idefics3 (what `model-garden create-demo-model --vision` writes)."""
    from model_garden.demo_vision_model import create_demo_vision_model

    directory = (
        pytestconfig.cache.mkdir(f"model-garden-vision-models-v{DEMO_VISION_MODEL_VERSION}") / "idefics3"
    )
    if not (directory / "config.json").is_file():
        create_demo_vision_model(directory)
    return directory


@pytest.fixture
def image_server() -> Iterator[ImageServer]:
    with ImageServer() as server:
        yield server


class FakeResolver:
    """A resolver to inject: names -> addresses, and a log of what was asked."""

    def __init__(self, names: dict[str, Sequence[str]]) -> None:
        self.names = {name: [ipaddress.ip_address(a) for a in addresses] for name, addresses in names.items()}
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.calls.append((host, port))
        if host not in self.names:
            raise OSError(f"no such host {host!r} (test resolver)")
        return self.names[host]


@pytest.fixture
def resolver_factory() -> Callable[[dict[str, Sequence[str]]], FakeResolver]:
    return FakeResolver


ResolverType = Callable[[str, int], Awaitable[Sequence[IPAddress]]]
