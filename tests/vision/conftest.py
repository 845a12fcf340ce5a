"""Fixtures of the vision tests: the tiny Idefics3 (built once, cached under the pytest cache), a
recording image server, and resolvers to inject (there is no DNS here)."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import pytest

from model_garden_common.addresses import IPAddress
from tests.support.image_server import ImageServer
from tests.support.runtime import ServerProcess, free_port, running_server, serve_model_argv
from tests.vision.images import make_image

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


# --- The real engine ------------------------------------------------------------------------------
VISION_MODEL = "vision"


@pytest.fixture(scope="session")
def allowed_image_server() -> Iterator[ImageServer]:
    """The image server the vision server allow-lists (127.0.0.1:<its port>)."""
    with ImageServer() as server:
        yield server


@pytest.fixture(scope="session")
def image_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An allowed directory with an image, a file outside it, and a symlink from inside to it."""
    root = tmp_path_factory.mktemp("images")
    allowed, outside = root / "allowed", root / "outside"
    allowed.mkdir()
    outside.mkdir()
    (allowed / "cat.png").write_bytes(make_image(80, 60, "PNG", seed=3))
    (outside / "secret.png").write_bytes(make_image(80, 60, "PNG", seed=4))
    (allowed / "escape.png").symlink_to(outside / "secret.png")
    return {"allowed": allowed, "outside": outside}


def vision_server_argv(model_dir: Path, port: int, allowed_port: int, allowed_dir: Path) -> list[str]:
    """serve-model on the tiny Idefics3 with the default limits, one allowed image host and dir."""
    return serve_model_argv(
        model_dir,
        port,
        "--served-model-name",
        VISION_MODEL,
        "--allowed-image-hosts",
        f"127.0.0.1:{allowed_port}",
        "--allowed-local-image-dir",
        str(allowed_dir),
    )


@pytest.fixture(scope="module")
def vision_server(
    vision_model_dir: Path,
    allowed_image_server: ImageServer,
    image_dirs: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    """`model-garden serve-model` on the tiny Idefics3 (module-scoped: one engine at a time)."""
    port = free_port()
    log = tmp_path_factory.mktemp("vision") / "serve-model.log"
    argv = vision_server_argv(vision_model_dir, port, allowed_image_server.port, image_dirs["allowed"])
    with running_server(argv, port, log) as server:
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
