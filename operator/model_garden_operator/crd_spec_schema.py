"""The `.spec` part of the InferenceModel schema: its fields, defaults and cross-field rules.

`crd_schema` wraps it into the full CRD. The spec is assembled from sections (SPEC_SECTIONS), so
a later section such as `vision` is one more function in that tuple. Every field carries a
description: `kubectl explain` teaches the API.
"""

from __future__ import annotations

from collections.abc import Callable

from model_garden_common import constants as c
from model_garden_common.settings import (
    DTYPES,
    ENGINE_FLAGS,
    MODEL_FLAG,
    QUANTIZATION_METHODS,
    EngineSettings,
)
from model_garden_common.vision import MAX_IMAGE_PIXELS_CEILING, VisionSettings
from model_garden_operator.openapi import (
    Schema,
    array,
    boolean,
    cel_rule,
    integer,
    number,
    obj,
    opaque_object,
    quantity,
    string,
    string_map,
)

ACCELERATOR_GPU = "gpu"
ACCELERATOR_CPU = "cpu"
ACCELERATORS: tuple[str, ...] = (ACCELERATOR_GPU, ACCELERATOR_CPU)
SERVICE_TYPES: tuple[str, ...] = ("ClusterIP", "NodePort", "LoadBalancer")
DEFAULT_SERVICE_TYPE = "ClusterIP"
DEFAULT_REPLICAS = 1
# The key most Hugging Face token Secrets use (and the env var the runtime reads).
DEFAULT_TOKEN_SECRET_KEY = "HF_TOKEN"
# The key of spec.apiKeySecret's Secret that holds the runtime's API keys, one per line.
DEFAULT_API_KEY_SECRET_KEY = "api-keys"

# spec field -> EngineSettings field: the engine section of the spec. spec.py converts through
# it and a test checks every entry has a row in settings.ENGINE_FLAGS. The served model name is
# an engine field too, but the operator always sets it (spec.servedModelName or the name).
ENGINE_FIELDS: dict[str, str] = {
    "servedModelName": "served_model_name",
    "tensorParallelSize": "tensor_parallel_size",
    "gpuMemoryUtilization": "gpu_memory_utilization",
    "quantization": "quantization",
    "maxModelLen": "max_model_len",
    "dtype": "dtype",
    "enforceEager": "enforce_eager",
    "maxNumSeqs": "max_num_seqs",
    "seed": "seed",
}

# spec.vision field -> VisionSettings field: the runtime's image limits and fetch policy. spec.py
# converts through it, the builders pass the settings on as the runtime's flags, and a test checks
# every VisionSettings field has an entry.
VISION_FIELDS: dict[str, str] = {
    "maxImagesPerPrompt": "max_images_per_request",
    "maxImageBytes": "max_image_bytes",
    "maxImagePixels": "max_image_pixels",
    "maxRequestBytes": "max_request_bytes",
    "fetchTimeoutSeconds": "image_fetch_timeout",
    "maxRedirects": "image_max_redirects",
    "maxConcurrentFetches": "max_concurrent_image_fetches",
    "allowedHosts": "allowed_image_hosts",
    "allowedHostsOnly": "allowed_image_hosts_only",
    "allowedLocalDirectory": "allowed_local_image_dir",
}
# host:port, [IPv6]:port, or an address with an optional prefix length (the runtime parses each
# entry fully; this catches the obvious mistakes at admission).
ALLOWED_HOST_PATTERN = r"^((\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5}|[0-9A-Fa-f:.]+(/[0-9]{1,3})?)$"

# A DNS-1035 label: the name becomes the Service's name (and a DNS name in the endpoint).
NAME_PATTERN = "^[a-z]([-a-z0-9]*[a-z0-9])?$"
NAME_MAX_LENGTH = 63


def _engine_description(field: str, extra: str = "") -> str:
    """The settings field's own description (one text for CLI, API and CRD), plus CRD notes."""
    base = EngineSettings.model_fields[field].description or ""
    return f"{base} {extra}".strip()


def _managed_examples() -> str:
    # Spelled by the settings table, never here.
    return f"{ENGINE_FLAGS[0].flag}, {MODEL_FLAG}"


# --- Spec sections ----------------------------------------------------------------------------
def _model_section() -> Schema:
    return {
        "model": string(
            "The model to serve: a Hugging Face model id (e.g. Qwen/Qwen2.5-1.5B-Instruct), downloaded "
            f"into the cache volume, or an absolute path inside it (under {c.MODEL_CACHE_DIR}).",
            minLength=1,
        ),
        "servedModelName": string(
            "Name clients send as `model` in OpenAI requests. Default: the InferenceModel's name.",
            minLength=1,
        ),
        "replicas": integer(
            "Number of runtime pods (each one loads the whole model). 0 stops the model and frees its "
            "GPUs. Also set by `kubectl scale` and HorizontalPodAutoscalers.",
            format="int32",
            minimum=0,
            default=DEFAULT_REPLICAS,
        ),
    }


def _engine_section() -> Schema:
    return {
        "tensorParallelSize": integer(
            _engine_description(
                "tensor_parallel_size",
                "Each replica requests this many GPUs (spec.gpuResourceName). Must be 1 on CPU.",
            ),
            format="int32",
            minimum=1,
            default=1,
        ),
        "gpuMemoryUtilization": number(
            _engine_description("gpu_memory_utilization", "Default: vLLM's (0.9)."),
            minimum=0,
            exclusiveMinimum=True,
            maximum=1,
        ),
        "quantization": string(
            _engine_description(
                "quantization",
                "One of the methods vLLM 0.32 accepts; usually the checkpoint's own, which vLLM "
                "detects when this is omitted.",
            ),
            enum=list(QUANTIZATION_METHODS),
        ),
        "maxModelLen": integer(_engine_description("max_model_len"), format="int32", minimum=1),
        "dtype": string(_engine_description("dtype", "Default: auto."), enum=list(DTYPES)),
        "enforceEager": boolean(_engine_description("enforce_eager")),
        "maxNumSeqs": integer(_engine_description("max_num_seqs"), format="int32", minimum=1),
        "seed": integer(_engine_description("seed"), format="int64", minimum=0),
        "extraArgs": array(
            'Further vLLM engine flags, passed after `--` (e.g. ["--max-num-batched-tokens", '
            '"8192"]). A flag that a field of this spec manages (' + _managed_examples() + ", "
            "...), or an abbreviation of one, is rejected rather than silently overridden: use the "
            "field.",
            {"type": "string"},
        ),
    }


def _pod_section() -> Schema:
    return {
        "accelerator": string(
            "Where the model runs: gpu (default) requests spec.tensorParallelSize GPUs per replica "
            "and uses the operator's GPU runtime image; cpu requests no GPUs and uses the CPU "
            "runtime image (for laptops and kind).",
            enum=list(ACCELERATORS),
            default=ACCELERATOR_GPU,
        ),
        "image": string(
            "Runtime container image. Default: the operator's runtime image for the accelerator "
            "(set by the Helm chart's values).",
            minLength=1,
        ),
        "gpuResourceName": string(
            "Extended resource that counts GPUs (e.g. nvidia.com/gpu, amd.com/gpu). Default: the "
            "operator's setting. Not allowed with accelerator cpu.",
            minLength=1,
        ),
        "resources": obj(
            "Compute resources of the runtime container. When given it replaces the computed "
            "default (spec.tensorParallelSize GPUs as requests and limits), so include the GPUs "
            "yourself.",
            {
                "limits": {
                    "type": "object",
                    "description": "Most of each resource the container may use (e.g. nvidia.com/gpu: 1).",
                    "additionalProperties": quantity("A quantity, e.g. 1, 500m, 16Gi."),
                },
                "requests": {
                    "type": "object",
                    "description": "Resources the scheduler reserves for the container.",
                    "additionalProperties": quantity("A quantity, e.g. 1, 500m, 16Gi."),
                },
            },
        ),
        "env": array(
            "Extra environment variables of the runtime container (Kubernetes EnvVar: name with "
            "value or valueFrom), after the operator's own. HF_HOME is managed (the cache volume); "
            "HF_TOKEN may be set here only when spec.huggingFaceTokenSecret is not.",
            {
                "type": "object",
                "description": "A Kubernetes EnvVar.",
                "required": ["name"],
                "properties": {"name": string("Name of the environment variable.", minLength=1)},
                "x-kubernetes-preserve-unknown-fields": True,
            },
        ),
        "envFrom": array(
            "Sources of environment variables (Kubernetes EnvFromSource: configMapRef or "
            "secretRef). Variables in spec.env and the operator's own take precedence.",
            opaque_object("A Kubernetes EnvFromSource."),
        ),
        "huggingFaceTokenSecret": obj(
            "Secret holding a Hugging Face access token (for gated or private models), given to "
            "the runtime as HF_TOKEN.",
            {
                "name": string("Name of the Secret, in the InferenceModel's namespace.", minLength=1),
                "key": string(
                    f"Key of the token in the Secret. Default: {DEFAULT_TOKEN_SECRET_KEY}.",
                    minLength=1,
                    default=DEFAULT_TOKEN_SECRET_KEY,
                ),
            },
            required=["name"],
        ),
        "apiKeySecret": obj(
            "Secret holding the API keys clients must send (`Authorization: Bearer KEY` or "
            "`X-API-Key: KEY`), one per line; blank lines and lines starting with # are skipped. "
            "The operator mounts that key read-only as a file and passes it to the runtime; "
            f"{c.HEALTH_PATH}, {c.LIVENESS_PATH} and {c.METRICS_PATH} stay open (probes and "
            "scrapes). The runtime reads the keys when it starts: after changing them, restart "
            "the pods (kubectl rollout restart deployment NAME). Default: no key required.",
            {
                "name": string("Name of the Secret, in the InferenceModel's namespace.", minLength=1),
                "key": string(
                    "Key in the Secret whose value lists the API keys. "
                    f"Default: {DEFAULT_API_KEY_SECRET_KEY}.",
                    minLength=1,
                    default=DEFAULT_API_KEY_SECRET_KEY,
                ),
            },
            required=["name"],
        ),
        "cache": obj(
            f"Volume mounted at {c.MODEL_CACHE_DIR} (HF_HOME), where models are downloaded and "
            "read from. Exactly one of persistentVolumeClaim or emptyDir. Default: an emptyDir "
            "(the model is downloaded again by every new pod).",
            {
                "persistentVolumeClaim": obj(
                    "An existing PersistentVolumeClaim: downloads survive restarts and, with a "
                    "ReadWriteMany volume, are shared by replicas.",
                    {"claimName": string("Name of the PVC, in the InferenceModel's namespace.", minLength=1)},
                    required=["claimName"],
                ),
                "emptyDir": obj(
                    "A scratch volume that lives as long as the pod.",
                    {"sizeLimit": quantity("Most disk the cache may use (e.g. 50Gi). Default: none.")},
                ),
            },
            rules=[
                cel_rule(
                    "has(self.persistentVolumeClaim) != has(self.emptyDir)",
                    "cache takes exactly one of persistentVolumeClaim or emptyDir",
                )
            ],
        ),
        "nodeSelector": string_map("Node labels the runtime pods must match (e.g. a GPU product label)."),
        "tolerations": array(
            "Tolerations of the runtime pods (e.g. for tainted GPU nodes).",
            obj(
                "A Kubernetes Toleration.",
                {
                    "key": string("Taint key the toleration applies to; empty matches all keys."),
                    # No enums here: Kubernetes accepts "" for both, meaning Equal / every effect.
                    "operator": string("Exists, or Equal (the default) to match value too."),
                    "value": string("Taint value to match (with operator Equal)."),
                    "effect": string(
                        "Taint effect (NoSchedule, PreferNoSchedule or NoExecute); empty matches all."
                    ),
                    "tolerationSeconds": integer(
                        "How long a NoExecute taint is tolerated before eviction; default: forever.",
                        format="int64",
                    ),
                },
            ),
        ),
        "affinity": opaque_object(
            "Scheduling affinity of the runtime pods (Kubernetes Affinity: nodeAffinity, podAffinity, "
            "podAntiAffinity)."
        ),
        "priorityClassName": string("PriorityClass of the runtime pods."),
        "runtimeClassName": string("RuntimeClass of the runtime pods (e.g. nvidia)."),
    }


def _service_section() -> Schema:
    return {
        "service": obj(
            "The Service in front of the runtime pods, named after the InferenceModel.",
            {
                "type": string(
                    f"Service type. Default: {DEFAULT_SERVICE_TYPE}.",
                    enum=list(SERVICE_TYPES),
                    default=DEFAULT_SERVICE_TYPE,
                ),
                "port": integer(
                    f"Port of the Service (named http), forwarded to the runtime's port "
                    f"{c.RUNTIME_PORT}. Default: {c.DEFAULT_SERVICE_PORT}.",
                    format="int32",
                    minimum=1,
                    maximum=65535,
                    default=c.DEFAULT_SERVICE_PORT,
                ),
            },
            # So the defaults inside apply when the whole section is omitted.
            default={},
        )
    }


def _vision_description(field: str, extra: str = "") -> str:
    """The settings field's own description and default (one text for CLI and CRD)."""
    info = VisionSettings.model_fields[field]
    default = info.default
    shown = "" if default in (None, (), False) else f" Default: {default}."
    return f"{info.description}{shown} {extra}".strip()


def _vision_section() -> Schema:
    names = {value: key for key, value in VISION_FIELDS.items()}
    return {
        "vision": obj(
            "Images in chat requests (vision-language models): limits, and where the runtime may "
            "fetch image URLs from. The runtime fetches and checks every image itself (vLLM never "
            "does): http(s) URLs only from public addresses unless allowedHosts says otherwise, "
            "file:// URLs only under allowedLocalDirectory. Omitted fields keep the runtime's "
            "defaults; a refused image is a 400 naming the limit.",
            {
                names["max_images_per_request"]: integer(
                    _vision_description("max_images_per_request"), format="int32", minimum=0, maximum=1000
                ),
                names["max_image_bytes"]: integer(
                    _vision_description("max_image_bytes"), format="int64", minimum=1
                ),
                names["max_image_pixels"]: integer(
                    _vision_description("max_image_pixels"),
                    format="int64",
                    minimum=1,
                    maximum=MAX_IMAGE_PIXELS_CEILING,
                ),
                names["max_request_bytes"]: integer(
                    _vision_description("max_request_bytes"), format="int64", minimum=1024
                ),
                names["image_fetch_timeout"]: number(
                    _vision_description("image_fetch_timeout"), minimum=0, exclusiveMinimum=True, maximum=600
                ),
                names["image_max_redirects"]: integer(
                    _vision_description("image_max_redirects"), format="int32", minimum=0, maximum=20
                ),
                names["max_concurrent_image_fetches"]: integer(
                    _vision_description("max_concurrent_image_fetches"),
                    format="int32",
                    minimum=1,
                    maximum=1024,
                ),
                names["allowed_image_hosts"]: array(
                    "Exceptions to the public-address rule for image URLs: host:port pairs "
                    "(images.internal:8080, [fd00::5]:443) and CIDR ranges (10.0.0.0/8). A host:port "
                    "entry matches the URL's normalized host and port exactly (user@host and other URL "
                    "tricks do not match); a range matches the addresses a URL's host resolves to, on "
                    "any port. Default: none, so only public addresses are fetched.",
                    string("host:port, [IPv6]:port, or a CIDR range.", pattern=ALLOWED_HOST_PATTERN),
                    maxItems=256,
                ),
                names["allowed_image_hosts_only"]: boolean(_vision_description("allowed_image_hosts_only")),
                names["allowed_local_image_dir"]: string(
                    _vision_description(
                        "allowed_local_image_dir",
                        f"An absolute path inside the container (e.g. under {c.MODEL_CACHE_DIR}).",
                    ),
                    pattern="^/",
                ),
            },
        )
    }


# Order is the order fields appear in the CRD (and in `kubectl explain`). A new section is one
# more function here.
SPEC_SECTIONS: tuple[Callable[[], Schema], ...] = (
    _model_section,
    _engine_section,
    _pod_section,
    _service_section,
    _vision_section,
)

SPEC_RULES: tuple[Schema, ...] = (
    cel_rule(
        f"!has(self.accelerator) || self.accelerator != '{ACCELERATOR_CPU}' "
        "|| !has(self.tensorParallelSize) || self.tensorParallelSize == 1",
        "tensorParallelSize must be 1 with accelerator cpu",
        ".tensorParallelSize",
    ),
    cel_rule(
        f"!has(self.accelerator) || self.accelerator != '{ACCELERATOR_CPU}' || !has(self.gpuResourceName)",
        "gpuResourceName has no meaning with accelerator cpu",
        ".gpuResourceName",
    ),
)


def spec_schema() -> Schema:
    """The openAPIV3Schema of `.spec`."""
    properties: Schema = {}
    for section in SPEC_SECTIONS:
        properties.update(section())
    return obj(
        "Desired state of an InferenceModel: the model, how vLLM runs it, and the pods that serve it.",
        properties,
        required=["model"],
        rules=SPEC_RULES,
    )
