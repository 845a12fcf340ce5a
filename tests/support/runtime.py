"""Start `model-garden` server processes for tests and wait until they answer."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from tests.support.waiting import wait_until

# Engine flags every test engine uses: small context, float32 on CPU, no compilation (fast start).
TEST_ENGINE_ARGS: tuple[str, ...] = ("--max-model-len", "256", "--dtype", "float32", "--enforce-eager")

# What vLLM's CPU build needs here: a small KV cache (GiB) instead of a share of all memory.
ENGINE_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "TOKENIZERS_PARALLELISM": "false"}

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def engine_env(**extra: str) -> dict[str, str]:
    return {**os.environ, **ENGINE_ENV, **extra}


class ServerProcess:
    """A server started as a subprocess, its output kept in a log file for failure reports."""

    def __init__(self, argv: Sequence[str], port: int, log_path: Path, env: dict[str, str] | None = None):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env or engine_env(),
            start_new_session=True,
        )

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_for(self, path: str, timeout: float, status: int = 200) -> None:
        def answered() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(self.url + path, timeout=5).status_code == status
            return False

        try:
            wait_until(answered, timeout, interval=0.5, what=f"{self.url}{path} to answer {status}")
        except TimeoutError as error:
            raise TimeoutError(f"{error}\n{self.log_tail()}") from None

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        return self.process.returncode


@contextlib.contextmanager
def running_server(
    argv: Sequence[str],
    port: int,
    log_path: Path,
    ready_path: str = "/health",
    timeout: float = 240,
    env: dict[str, str] | None = None,
) -> Iterator[ServerProcess]:
    server = ServerProcess(argv, port, log_path, env)
    try:
        server.wait_for(ready_path, timeout)
        yield server
    finally:
        server.stop()


def serve_model_argv(model_dir: Path, port: int, *extra: str) -> list[str]:
    return [
        str(BIN / "model-garden"),
        "serve-model",
        "--model-path",
        str(model_dir),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        *TEST_ENGINE_ARGS,
        *extra,
    ]
