"""The runtime pod template of an InferenceModel: container, probes, volumes, security, scheduling.

Pure functions over a parsed `InferenceModel` and the operator's configuration; `builders.py`
wraps the template into a Deployment. Nothing here spells an engine flag: the container args come
from `model_garden_common.settings`.
"""

from __future__ import annotations

import copy
from typing import Any

from model_garden_common import constants as c
from model_garden_common.settings import (
    API_KEY_FILE_OPTION,
    DISABLE_MANAGEMENT_OPTION,
    DRAIN_TIMEOUT_OPTION,
    HOST_OPTION,
    MODEL_PATH_OPTION,
    PORT_OPTION,
    SERVE_MODEL_COMMAND,
)
from model_garden_operator.config import OperatorConfig
from model_garden_operator.spec import ENV_HF_HOME, ENV_HF_TOKEN, InferenceModel

CONTAINER_NAME = "runtime"
CACHE_VOLUME = "model-cache"
SHM_VOLUME = "dshm"
SHM_PATH = "/dev/shm"
# spec.apiKeySecret: the Secret's key is mounted read-only as API_KEYS_DIR/API_KEYS_FILE.
API_KEYS_VOLUME = "api-keys"
API_KEYS_DIR = "/etc/model-garden/api-keys"
API_KEYS_FILE = "keys"
API_KEYS_PATH = f"{API_KEYS_DIR}/{API_KEYS_FILE}"
# Owner and group (fsGroup) may read the keys; nobody else, and nobody may write.
API_KEYS_MODE = 0o440
# Listen on every interface of the pod: the Service and the kubelet's probes connect from outside.
LISTEN_HOST = "0.0.0.0"
PROBE_TIMEOUT_SECONDS = 5

PROMETHEUS_SCRAPE = "prometheus.io/scrape"
PROMETHEUS_PORT = "prometheus.io/port"
PROMETHEUS_PATH = "prometheus.io/path"


def container_args(model: InferenceModel) -> list[str]:
    """`model-garden serve-model` options (spec.vision's among them, only those it sets), the engine
    flags in table order, then `-- extraArgs`."""
    args = [
        MODEL_PATH_OPTION,
        model.spec.model,
        # Explicit, not the runtime's default: the pod's terminationGracePeriodSeconds is sized
        # from the same constant (preStop pause + this drain + a margin).
        DRAIN_TIMEOUT_OPTION,
        str(c.DRAIN_TIMEOUT_SECONDS),
    ]
    if model.spec.api_key_secret is not None:
        args += [API_KEY_FILE_OPTION, API_KEYS_PATH]
    args += [
        HOST_OPTION,
        LISTEN_HOST,
        PORT_OPTION,
        str(c.RUNTIME_PORT),
        *model.vision.to_args(),
        # Pods serve the one model of their spec: no load/unload routes (status and generate stay).
        DISABLE_MANAGEMENT_OPTION,
        *model.engine.to_args(),
    ]
    if model.spec.extra_args:
        args += ["--", *model.spec.extra_args]
    return args


def runtime_image(model: InferenceModel, config: OperatorConfig) -> str:
    if model.spec.image:
        return model.spec.image
    return config.cpu_image if model.is_cpu else config.gpu_image


def container_env(model: InferenceModel) -> list[dict[str, Any]]:
    """Ours first, sorted by name; then the user's, in the order given.

    The user's list is not re-sorted: Kubernetes expands `$(VAR)` only from variables defined
    earlier in the list, so sorting could break a spec that works; its order is already part of
    the spec, so the output stays deterministic. Ours come first so that the user's may refer to
    them. (HF_HOME, and HF_TOKEN when the token Secret is given, are rejected in spec.env by
    spec.py; envFrom cannot override them, explicit env wins over envFrom.)
    """
    ours: list[dict[str, Any]] = [{"name": ENV_HF_HOME, "value": c.MODEL_CACHE_DIR}]
    secret = model.spec.hugging_face_token_secret
    if secret is not None:
        ours.append(
            {
                "name": ENV_HF_TOKEN,
                "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}},
            }
        )
    ours.sort(key=lambda var: var["name"])
    return ours + [var.to_dict() for var in model.spec.env]


def container_resources(model: InferenceModel, config: OperatorConfig) -> dict[str, Any]:
    """spec.resources as given, else one GPU per tensor-parallel rank (none on CPU)."""
    if model.spec.resources is not None:
        return model.spec.resources.to_dict()
    if model.is_cpu:
        return {}
    gpus = {model.spec.gpu_resource_name or config.gpu_resource_name: str(model.spec.tensor_parallel_size)}
    # Extended resources cannot be overcommitted: requests must equal limits.
    return {"limits": gpus, "requests": dict(gpus)}


def _http_probe(path: str, *, period: int, failure_threshold: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": c.RUNTIME_PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": PROBE_TIMEOUT_SECONDS,
        "failureThreshold": failure_threshold,
    }


def build_container(model: InferenceModel, config: OperatorConfig) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": runtime_image(model, config),
        # Explicit, so the image's entrypoint never doubles them.
        "command": list(SERVE_MODEL_COMMAND),
        "args": container_args(model),
        "ports": [{"name": c.RUNTIME_PORT_NAME, "containerPort": c.RUNTIME_PORT, "protocol": "TCP"}],
        "env": container_env(model),
    }
    if model.spec.env_from:
        container["envFrom"] = [copy.deepcopy(source) for source in model.spec.env_from]
    resources = container_resources(model, config)
    if resources:
        container["resources"] = resources
    container |= {
        "volumeMounts": build_volume_mounts(model),
        # /health answers 200 only once the model is loaded: downloading and loading may take
        # STARTUP_PROBE_PERIOD_SECONDS x STARTUP_PROBE_FAILURE_THRESHOLD (30 minutes). Liveness and
        # readiness only start after it succeeds.
        "startupProbe": _http_probe(
            c.HEALTH_PATH,
            period=c.STARTUP_PROBE_PERIOD_SECONDS,
            failure_threshold=c.STARTUP_PROBE_FAILURE_THRESHOLD,
        ),
        "readinessProbe": _http_probe(c.HEALTH_PATH, period=10, failure_threshold=3),
        # /livez answers while the process lives, so a busy or reloading engine is not restarted.
        "livenessProbe": _http_probe(c.LIVENESS_PATH, period=10, failure_threshold=6),
        # The pause lets the Service's endpoints drop the pod before SIGTERM starts the drain
        # (the `sleep` action needs no binary in the image; beta and on by default since 1.30).
        "lifecycle": {"preStop": {"sleep": {"seconds": c.PRESTOP_SLEEP_SECONDS}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            # Writable root filesystem on purpose: vLLM, torch.compile, Triton, FlashInfer and
            # numba write caches and config under $HOME and /tmp, and a read-only root is not
            # part of the "restricted" Pod Security Standard. Revisit with a tested list of
            # writable mounts.
            "readOnlyRootFilesystem": False,
        },
    }
    return container


def build_volume_mounts(model: InferenceModel) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [
        {"name": CACHE_VOLUME, "mountPath": c.MODEL_CACHE_DIR},
        {"name": SHM_VOLUME, "mountPath": SHM_PATH},
    ]
    if model.spec.api_key_secret is not None:
        mounts.append({"name": API_KEYS_VOLUME, "mountPath": API_KEYS_DIR, "readOnly": True})
    return mounts


def build_volumes(model: InferenceModel) -> list[dict[str, Any]]:
    cache = model.spec.cache
    if cache is not None and cache.persistent_volume_claim is not None:
        cache_volume: dict[str, Any] = {
            "name": CACHE_VOLUME,
            "persistentVolumeClaim": {"claimName": cache.persistent_volume_claim.claim_name},
        }
    else:
        empty_dir: dict[str, Any] = {}
        if cache is not None and cache.empty_dir is not None and cache.empty_dir.size_limit is not None:
            empty_dir["sizeLimit"] = cache.empty_dir.size_limit
        cache_volume = {"name": CACHE_VOLUME, "emptyDir": empty_dir}
    # Memory-backed /dev/shm for PyTorch and NCCL (the container runtime's default is 64 MiB).
    # No size limit: it counts against the pod's memory limit, and NCCL's need grows with the
    # tensor-parallel size, so a fixed cap would evict large models.
    shm_volume = {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory"}}
    volumes = [cache_volume, shm_volume]
    keys = model.spec.api_key_secret
    if keys is not None:
        # Only that key, under a fixed file name (the Secret's other keys stay out of the pod).
        # Not a subPath mount, so the kubelet keeps the file in step with the Secret.
        secret = {
            "secretName": keys.name,
            "items": [{"key": keys.key, "path": API_KEYS_FILE}],
            "defaultMode": API_KEYS_MODE,
        }
        volumes.append({"name": API_KEYS_VOLUME, "secret": secret})
    return volumes


def pod_annotations(model: InferenceModel) -> dict[str, str]:
    return {
        c.ANNOTATION_MODEL: model.spec.model,
        PROMETHEUS_SCRAPE: "true",
        PROMETHEUS_PORT: str(c.RUNTIME_PORT),
        PROMETHEUS_PATH: c.METRICS_PATH,
    }


def build_pod_spec(model: InferenceModel, config: OperatorConfig) -> dict[str, Any]:
    spec = model.spec
    pod: dict[str, Any] = {
        # The runtime never calls the Kubernetes API.
        "automountServiceAccountToken": False,
        # Service links would inject <SERVICE>_PORT variables: a Service named "vllm" sets
        # VLLM_PORT, which vLLM reads as its own setting and then fails on.
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": c.TERMINATION_GRACE_PERIOD_SECONDS,
        # "restricted" Pod Security Standard.
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": c.RUNTIME_UID,
            "runAsGroup": c.RUNTIME_GID,
            "fsGroup": c.RUNTIME_GID,
            # A cache PVC holds tens of gigabytes: chown it only when its root is not ours yet.
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if config.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": name} for name in config.image_pull_secrets]
    if spec.node_selector:
        pod["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod["tolerations"] = [copy.deepcopy(toleration) for toleration in spec.tolerations]
    if spec.affinity:
        pod["affinity"] = copy.deepcopy(spec.affinity)
    if spec.priority_class_name:
        pod["priorityClassName"] = spec.priority_class_name
    if spec.runtime_class_name:
        pod["runtimeClassName"] = spec.runtime_class_name
    pod["containers"] = [build_container(model, config)]
    pod["volumes"] = build_volumes(model)
    return pod
