"""Run the HTTP API under uvicorn (the `serve` and `serve-model` commands)."""

from __future__ import annotations

import logging
import signal
from collections.abc import Sequence
from types import FrameType

from model_garden.api import Preload, create_app
from model_garden.auth import DEFAULT_OPEN_PATHS, KeyRing
from model_garden.inference import InferenceService
from model_garden_common.constants import DRAIN_TIMEOUT_SECONDS
from model_garden_common.limits import RequestLimits
from model_garden_common.vision import VisionSettings

__all__ = ["Preload", "run_server"]

logger = logging.getLogger("model_garden")


def _draining_server_class() -> type:
    import uvicorn

    class DrainingServer(uvicorn.Server):
        """uvicorn re-raises a caught signal once it has shut down (exit status 143 for SIGTERM).
        A SIGTERM that drained cleanly is a normal stop: exit 0."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if sig == signal.SIGTERM and not self.should_exit:
                logger.info(
                    "SIGTERM: draining in-flight requests (up to %s s), refusing new ones",
                    self.config.timeout_graceful_shutdown,
                )
            super().handle_exit(sig, frame)
            if sig == signal.SIGTERM:
                self._captured_signals.remove(sig)

    return DrainingServer


def run_server(
    host: str,
    port: int,
    *,
    enable_management_routes: bool = True,
    preload: Preload | None = None,
    access_log: bool = False,
    drain_timeout: float = DRAIN_TIMEOUT_SECONDS,
    api_keys: KeyRing | Sequence[str] = (),
    admin_api_keys: KeyRing | Sequence[str] = (),
    open_paths: Sequence[str] = DEFAULT_OPEN_PATHS,
    vision: VisionSettings | None = None,
    limits: RequestLimits | None = None,
) -> int:
    """Serve until stopped; the exit status is 1 when the preloaded model failed to load.

    On SIGTERM the server drains: it stops accepting connections at once (so readiness fails and
    new requests are refused), lets in-flight requests, streams included, finish for at most
    `drain_timeout` seconds, then stops the engine and exits 0. (vLLM's own server drops every
    in-flight stream on SIGTERM.)
    """
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(asctime)s [%(name)s] %(message)s")
    failures: list[BaseException] = []

    def stop_on_failure(error: BaseException) -> None:
        failures.append(error)
        server.should_exit = True

    app = create_app(
        InferenceService(vision=vision),
        enable_management_routes=enable_management_routes,
        preload=preload,
        on_preload_failure=stop_on_failure,
        api_keys=api_keys,
        admin_api_keys=admin_api_keys,
        open_paths=open_paths,
        limits=limits,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # An access-log line per request costs measurable CPU at high request rates (bench/);
        # vLLM's engine logs and our own stay on.
        access_log=access_log,
        log_level="info",
        timeout_keep_alive=5,
        # uvicorn's graceful shutdown is the drain: listening socket closed, idle keep-alive
        # connections closed, running responses allowed to finish until this timeout.
        timeout_graceful_shutdown=drain_timeout,
    )
    server = _draining_server_class()(config)
    server.run()
    return 1 if failures else 0
