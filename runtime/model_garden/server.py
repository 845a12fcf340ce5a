"""Run the HTTP API under uvicorn (the `serve` and `serve-model` commands)."""

from __future__ import annotations

import logging

from model_garden.api import Preload, create_app
from model_garden.inference import InferenceService

__all__ = ["Preload", "run_server"]

logger = logging.getLogger("model_garden")


def run_server(
    host: str,
    port: int,
    *,
    enable_management_routes: bool = True,
    preload: Preload | None = None,
    access_log: bool = False,
) -> int:
    """Serve until stopped; the exit status is 1 when the preloaded model failed to load."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(asctime)s [%(name)s] %(message)s")
    failures: list[BaseException] = []

    def stop_on_failure(error: BaseException) -> None:
        failures.append(error)
        server.should_exit = True

    app = create_app(
        InferenceService(),
        enable_management_routes=enable_management_routes,
        preload=preload,
        on_preload_failure=stop_on_failure,
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
    )
    server = uvicorn.Server(config)
    server.run()
    return 1 if failures else 0
