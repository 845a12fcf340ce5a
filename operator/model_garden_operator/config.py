"""The operator's configuration: defaults the builders fill into every InferenceModel's pods.

Each setting comes from a command-line flag of `model-garden-operator`, else from its environment
variable, else from the default here. The Helm chart sets the environment variables from its values.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
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
ENV_NETWORK_POLICY = "MODEL_GARDEN_NETWORK_POLICY"

DEFAULT_GPU_IMAGE = "ghcr.io/model-garden/runtime:0.1.0"
DEFAULT_CPU_IMAGE = "ghcr.io/model-garden/runtime:0.1.0-cpu"
DEFAULT_GPU_RESOURCE_NAME = "nvidia.com/gpu"
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
DEFAULT_HEALTH_PORT = 8080

LogFormat = Literal["text", "json"]


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _parse_bool(name: str, text: str | None, default: bool) -> bool:
    """`true`/`false` (also 1/0, yes/no, on/off, any case) from an environment variable."""
    if text is None or not text.strip():
        return default
    value = text.strip().lower()
    if value not in _TRUE + _FALSE:
        raise ValueError(f"{name} must be true or false, not {text!r}")
    return value in _TRUE


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
    # One NetworkPolicy per InferenceModel: ingress only on the runtime's port, no egress to the
    # cloud metadata address. False: the operator creates none (and deletes none it made before).
    network_policy: bool = True

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
            network_policy=_parse_bool(ENV_NETWORK_POLICY, env.get(ENV_NETWORK_POLICY), True),
        )


def parse_args(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> OperatorConfig:
    """`model-garden-operator` flags; each defaults to its environment variable, then to the default."""
    base = OperatorConfig.from_env(environ)
    parser = argparse.ArgumentParser(
        prog="model-garden-operator",
        description="Run the Model Garden operator: InferenceModels -> vLLM Deployments and Services.",
    )
    add = parser.add_argument
    add("--gpu-image", default=base.gpu_image, help=f"runtime image for GPU models (${ENV_GPU_IMAGE})")
    add("--cpu-image", default=base.cpu_image, help=f"runtime image for CPU models (${ENV_CPU_IMAGE})")
    add(
        "--gpu-resource-name",
        default=base.gpu_resource_name,
        help=f"extended resource that counts GPUs (${ENV_GPU_RESOURCE_NAME})",
    )
    add(
        "--image-pull-secrets",
        default=",".join(base.image_pull_secrets),
        help=f"comma-separated Secrets added to model pods' imagePullSecrets (${ENV_IMAGE_PULL_SECRETS})",
    )
    add(
        "--watch-namespaces",
        default=",".join(base.watch_namespaces),
        help=f"comma-separated namespaces to watch; empty: all (${ENV_WATCH_NAMESPACES})",
    )
    add("--cluster-domain", default=base.cluster_domain, help=f"for status.endpoint (${ENV_CLUSTER_DOMAIN})")
    add(
        "--log-level",
        default=base.log_level,
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help=f"(${ENV_LOG_LEVEL})",
    )
    add("--log-format", default=base.log_format, choices=("text", "json"), help=f"(${ENV_LOG_FORMAT})")
    add(
        "--health-port",
        default=base.health_port,
        type=int,
        help=f"port of the liveness endpoint /healthz; 0 turns it off (${ENV_HEALTH_PORT})",
    )
    add(
        "--network-policy",
        default=base.network_policy,
        action=argparse.BooleanOptionalAction,
        help="create a NetworkPolicy per InferenceModel: ingress on the runtime's port only, no "
        f"egress to the cloud metadata address (${ENV_NETWORK_POLICY}, true or false)",
    )
    args = parser.parse_args(argv)
    return OperatorConfig(
        gpu_image=args.gpu_image,
        cpu_image=args.cpu_image,
        gpu_resource_name=args.gpu_resource_name,
        image_pull_secrets=_split_list(args.image_pull_secrets),
        watch_namespaces=_split_list(args.watch_namespaces),
        cluster_domain=args.cluster_domain,
        log_level=args.log_level,
        log_format=args.log_format,
        health_port=args.health_port,
        network_policy=args.network_policy,
    )
