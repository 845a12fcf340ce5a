"""API keys end to end: `kubectl mg chat` through the emulated service proxy (which strips
`Authorization`, as the real API server does) to a real runtime that requires a key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulator.cluster import Cluster
from tests.plugin.emulator_proxy import ProxyingEmulator
from tests.plugin.helpers import one_line_error, put_model, run_mg
from tests.support.runtime import ServerProcess, free_port, running_server, serve_model_argv

pytestmark = pytest.mark.slow

KEY = "sk-plugin-right-key"


@pytest.fixture(scope="module")
def keyed_runtime(demo_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("keyed-plugin")
    (directory / "keys").write_text(KEY + "\n")
    port = free_port()
    argv = serve_model_argv(
        demo_model_dir, port, "--served-model-name", "demo", "--api-key-file", str(directory / "keys")
    )
    with running_server(argv, port, directory / "server.log") as server:
        yield server


async def test_chat_with_the_right_key_answers(
    keyed_runtime: ServerProcess, cluster: Cluster, emu: ProxyingEmulator, mg_env: dict[str, str]
) -> None:
    put_model(cluster, "demo", backend=keyed_runtime.url)
    result = await run_mg(
        {**mg_env, "MODEL_GARDEN_API_KEY": KEY}, "chat", "demo", "--max-tokens", "4", stdin="Hello"
    )
    assert result.code == 0, result.stderr
    assert result.stdout.strip()
    [request] = emu.proxied
    assert request.status == 200
    assert "authorization" not in {name.lower() for name in request.headers}


@pytest.mark.parametrize("key", ["sk-wrong", None], ids=["wrong-key", "no-key"])
async def test_chat_with_a_wrong_or_no_key_is_one_line_error(
    keyed_runtime: ServerProcess,
    cluster: Cluster,
    emu: ProxyingEmulator,
    mg_env: dict[str, str],
    key: str | None,
) -> None:
    put_model(cluster, "demo", backend=keyed_runtime.url)
    env = mg_env if key is None else {**mg_env, "MODEL_GARDEN_API_KEY": key}
    result = await run_mg(env, "chat", "demo", "--max-tokens", "4", stdin="Hello")
    line = one_line_error(result)
    assert "API key" in line or "401" in line, line
    [request] = emu.proxied
    assert request.status == 401
