"""`model-garden-operator`: flags and environment -> OperatorConfig -> Kopf, in this process.

    model-garden-operator                         # every namespace, kubeconfig or service account
    model-garden-operator --watch-namespaces a,b  # only these (MODEL_GARDEN_WATCH_NAMESPACES)
    KUBECONFIG=~/.kube/config model-garden-operator --log-format json --health-port 8080

Kopf serves the liveness probe (`GET :<health-port>/healthz`); the process runs standalone (no Kopf
peering), which is why the chart runs one replica with the Recreate strategy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import kopf

from model_garden_operator.config import OperatorConfig, parse_args
from model_garden_operator.handlers import make_registry

LIVENESS_PATH = "/healthz"


def configure_logging(config: OperatorConfig) -> None:
    """Kopf's formatter (JSON lines or text, with the object each line is about), at our level."""
    log_format = kopf.LogFormat.JSON if config.log_format == "json" else kopf.LogFormat.FULL
    kopf.configure(verbose=config.log_level == "DEBUG", log_format=log_format)
    logging.getLogger().setLevel(config.log_level)
    # aiohttp's access log of the probe server would log every probe.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def liveness_endpoint(config: OperatorConfig) -> str | None:
    return f"http://0.0.0.0:{config.health_port}{LIVENESS_PATH}" if config.health_port else None


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    configure_logging(config)
    kopf.run(
        registry=make_registry(),
        memo=kopf.Memo(config=config),
        clusterwide=not config.watch_namespaces,
        namespaces=config.watch_namespaces,
        standalone=True,
        liveness_endpoint=liveness_endpoint(config),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
