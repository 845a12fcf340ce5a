"""The operator's configuration: defaults the builders fill into every InferenceModel's pods.

Each setting comes from a command-line flag of `model-garden-operator`, else from its environment
variable, else from the default here. The Helm chart sets the environment variables from its values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

# Environment variables, one per setting (the chart's Deployment sets them).
ENV_GPU_IMAGE = "MODEL_GARDEN_RUNTIME_IMAGE"
ENV_CPU_IMAGE = "MODEL_GARDEN_RUNTIME_CPU_IMAGE"
ENV_GPU_RESOURCE_NAME = "MODEL_GARDEN_GPU_RESOURCE_NAME"
ENV_IMAGE_PULL_SECRETS = "MODEL_GARDEN_IMAGE_PULL_SECRETS"
ENV_WATCH_NAMESPACES = "MODEL_GARDEN_WATCH_NAMESPACES"
ENV_CLUSTER_DOMAIN = "MODEL_GARDEN_CLUSTER_DOMAIN"
ENV_LOG_LEVEL = "MODEL_GARDEN_LOG_LEVEL"
ENV_LOG_FORMAT = "MODEL_GARDEN_LOG_FORMAT"
ENV_HEALTH_PORT = "MODEL_GARDEN_OPERATOR_HEALTH_PORT"

DEFAULT_GPU_IMAGE = "ghcr.io/model-garden/runtime:0.1.0"
DEFAULT_CPU_IMAGE = "ghcr.io/model-garden/runtime:0.1.0-cpu"
DEFAULT_GPU_RESOURCE_NAME = "nvidia.com/gpu"
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
DEFAULT_HEALTH_PORT = 8080

LogFormat = Literal["text", "json"]


def _split_list(text: str | None) -> tuple[str, ...]:
    """`"a, b,,c"` -> ("a", "b", "c"): comma-separated settings, blanks ignored."""
    return tuple(item.strip() for item in (text or "").split(",") if item.strip())


@dataclass(frozen=True)
class OperatorConfig:
    """Everything the operator decides on behalf of InferenceModels that leave it unsaid."""

    gpu_image: str = DEFAULT_GPU_IMAGE
    cpu_image: str = DEFAULT_CPU_IMAGE
    gpu_resource_name: str = DEFAULT_GPU_RESOURCE_NAME
    # Secret names added to every model pod's imagePullSecrets.
    image_pull_secrets: tuple[str, ...] = ()
    # Empty: every namespace.
    watch_namespaces: tuple[str, ...] = ()
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    log_level: str = "INFO"
    log_format: LogFormat = "text"
    health_port: int = DEFAULT_HEALTH_PORT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorConfig:
        env = os.environ if environ is None else environ
        log_format = env.get(ENV_LOG_FORMAT, "text").lower()
        if log_format not in ("text", "json"):
            raise ValueError(f"{ENV_LOG_FORMAT} must be 'text' or 'json', not {log_format!r}")
        return cls(
            gpu_image=env.get(ENV_GPU_IMAGE) or DEFAULT_GPU_IMAGE,
            cpu_image=env.get(ENV_CPU_IMAGE) or DEFAULT_CPU_IMAGE,
            gpu_resource_name=env.get(ENV_GPU_RESOURCE_NAME) or DEFAULT_GPU_RESOURCE_NAME,
            image_pull_secrets=_split_list(env.get(ENV_IMAGE_PULL_SECRETS)),
            watch_namespaces=_split_list(env.get(ENV_WATCH_NAMESPACES)),
            cluster_domain=env.get(ENV_CLUSTER_DOMAIN) or DEFAULT_CLUSTER_DOMAIN,
            log_level=(env.get(ENV_LOG_LEVEL) or "INFO").upper(),
            log_format=log_format,  # type: ignore[arg-type]
            health_port=int(env.get(ENV_HEALTH_PORT) or DEFAULT_HEALTH_PORT),
        )
