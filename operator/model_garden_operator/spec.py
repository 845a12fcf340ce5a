"""An InferenceModel as a typed, frozen value, with the checks the CRD schema cannot declare.

`parse_model()` takes the object as the API server returns it (a dict) and either returns an
`InferenceModel` or raises `InvalidSpecError(field_path, message)`. The cross-field rules the CRD
states in CEL are checked here again: the API server enforces them in a cluster, but the test
emulator validates nothing, and a reconciler should never build from a spec it has not checked.

Unknown fields are ignored, as the API server prunes them: an older operator must keep working
beside a newer CRD.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError
from pydantic.alias_generators import to_camel

from model_garden_common import constants as c
from model_garden_common.settings import (
    ENGINE_FLAGS,
    MODEL_FLAG,
    VLLM_MEDIA_FLAGS,
    EngineSettings,
    find_managed_flag_collisions,
    managed_flags,
)
from model_garden_common.vision import VisionSettings
from model_garden_operator.crd_spec_schema import (
    ACCELERATOR_CPU,
    ACCELERATOR_GPU,
    DEFAULT_API_KEY_SECRET_KEY,
    DEFAULT_REPLICAS,
    DEFAULT_SERVICE_TYPE,
    DEFAULT_TOKEN_SECRET_KEY,
    ENGINE_FIELDS,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    VISION_FIELDS,
)
from model_garden_operator.openapi import QUANTITY_PATTERN

# Environment variables the operator sets on the runtime container.
ENV_HF_HOME = "HF_HOME"
ENV_HF_TOKEN = "HF_TOKEN"

_NAME_RE = re.compile(NAME_PATTERN)
_SETTINGS_TO_SPEC = {field: spec_name for spec_name, field in ENGINE_FIELDS.items()}
_VISION_TO_SPEC = {field: spec_name for spec_name, field in VISION_FIELDS.items()}


class InvalidSpecError(ValueError):
    """An InferenceModel that cannot work; `field_path` is where (e.g. `spec.extraArgs`)."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(f"{field_path}: {message}")
        self.field_path = field_path
        self.message = message


class _Frozen(BaseModel):
    # Python names in snake_case, CRD names (camelCase) as aliases.
    model_config = ConfigDict(frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True)


class PersistentVolumeClaimCache(_Frozen):
    claim_name: str = Field(min_length=1)


def _quantity_text(value: Any) -> Any:
    # A quantity may come as a number; the API server stores (and returns) it as text.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


Quantity = Annotated[str, BeforeValidator(_quantity_text), StringConstraints(pattern=QUANTITY_PATTERN)]


class EmptyDirCache(_Frozen):
    size_limit: Quantity | None = None


class CacheSpec(_Frozen):
    persistent_volume_claim: PersistentVolumeClaimCache | None = None
    empty_dir: EmptyDirCache | None = None


class SecretKeySelector(_Frozen):
    name: str = Field(min_length=1)
    key: str = Field(DEFAULT_TOKEN_SECRET_KEY, min_length=1)


class ApiKeySecretSelector(_Frozen):
    """`.spec.apiKeySecret`: the Secret and key whose value lists the runtime's API keys."""

    name: str = Field(min_length=1)
    key: str = Field(DEFAULT_API_KEY_SECRET_KEY, min_length=1)


class ServiceSpec(_Frozen):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = DEFAULT_SERVICE_TYPE
    port: int = Field(c.DEFAULT_SERVICE_PORT, ge=1, le=65535)


class ResourceRequirements(_Frozen):
    """What the CRD keeps of a Kubernetes ResourceRequirements (it prunes the rest)."""

    limits: dict[str, Quantity] | None = None
    requests: dict[str, Quantity] | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class EnvVar(BaseModel):
    """A Kubernetes EnvVar: a name, and the rest kept as given (value or valueFrom)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    name: str = Field(min_length=1)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **copy.deepcopy(self.model_extra or {})}


class VisionSpec(_Frozen):
    """`.spec.vision`: the runtime's image limits and fetch policy (None: the runtime's default)."""

    max_images_per_prompt: int | None = None
    max_image_bytes: int | None = None
    max_image_pixels: int | None = None
    max_request_bytes: int | None = None
    fetch_timeout_seconds: float | None = None
    max_redirects: int | None = None
    max_concurrent_fetches: int | None = None
    allowed_hosts: tuple[str, ...] | None = None
    allowed_hosts_only: bool | None = None
    allowed_local_directory: str | None = None


class InferenceModelSpec(_Frozen):
    """`.spec`, with the CRD's defaults. Engine fields keep EngineSettings' names."""

    model: str = Field(min_length=1)
    served_model_name: str | None = Field(None, min_length=1)
    replicas: int = Field(DEFAULT_REPLICAS, ge=0)
    # The engine (None: vLLM's default).
    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    quantization: str | None = None
    max_model_len: int | None = Field(None, ge=1)
    dtype: str | None = None
    enforce_eager: bool = False
    max_num_seqs: int | None = Field(None, ge=1)
    seed: int | None = Field(None, ge=0)
    extra_args: tuple[str, ...] = ()
    # The pod. The nested Kubernetes types the CRD keeps opaque (envFrom, tolerations, affinity)
    # stay plain dicts: the API server checks them when the operator writes the Deployment.
    accelerator: Literal["gpu", "cpu"] = ACCELERATOR_GPU
    image: str | None = Field(None, min_length=1)
    gpu_resource_name: str | None = Field(None, min_length=1)
    resources: ResourceRequirements | None = None
    env: tuple[EnvVar, ...] = ()
    env_from: tuple[dict[str, Any], ...] = ()
    hugging_face_token_secret: SecretKeySelector | None = None
    api_key_secret: ApiKeySecretSelector | None = None
    cache: CacheSpec | None = None
    node_selector: dict[str, str] | None = None
    tolerations: tuple[dict[str, Any], ...] = ()
    affinity: dict[str, Any] | None = None
    priority_class_name: str | None = None
    runtime_class_name: str | None = None
    service: ServiceSpec = ServiceSpec()
    vision: VisionSpec | None = None


class InferenceModel(BaseModel):
    """A checked InferenceModel: identity, spec, and the engine settings derived from it."""

    model_config = ConfigDict(frozen=True)

    name: str
    namespace: str | None
    spec: InferenceModelSpec
    engine: EngineSettings
    vision: VisionSettings = VisionSettings()

    @property
    def served_model_name(self) -> str:
        return self.engine.served_model_name or self.name

    @property
    def is_cpu(self) -> bool:
        return self.spec.accelerator == ACCELERATOR_CPU


def parse_model(obj: Mapping[str, Any]) -> InferenceModel:
    """Check an InferenceModel object and return it typed; raise InvalidSpecError if it cannot work."""
    metadata = obj.get("metadata") or {}
    name = metadata.get("name")
    if not isinstance(name, str) or not _is_dns1035_label(name):
        raise InvalidSpecError(
            "metadata.name",
            f"{name!r} is not a DNS-1035 label of at most {NAME_MAX_LENGTH} characters "
            "(lowercase letters, digits and '-', starting with a letter, ending with a letter or digit)",
        )
    raw_spec = obj.get("spec")
    if not isinstance(raw_spec, Mapping):
        raise InvalidSpecError("spec", "is required")
    try:
        # Strict, through JSON: "4" is not an integer here any more than in the schema, while
        # JSON arrays still fill tuples.
        spec = InferenceModelSpec.model_validate_json(json.dumps(raw_spec), strict=True)
    except ValidationError as error:
        raise _from_validation_error(error, "spec") from None
    _check_rules(spec)
    return InferenceModel(
        name=name,
        namespace=metadata.get("namespace"),
        spec=spec,
        engine=_engine_settings(name, spec),
        vision=_vision_settings(spec),
    )


def _is_dns1035_label(name: str) -> bool:
    return len(name) <= NAME_MAX_LENGTH and _NAME_RE.fullmatch(name) is not None


def _engine_settings(name: str, spec: InferenceModelSpec) -> EngineSettings:
    values: dict[str, Any] = {
        field: getattr(spec, field)
        for field in ENGINE_FIELDS.values()
        if getattr(spec, field) not in (None, False)
    }
    # The operator always passes --served-model-name: clients (kubectl mg) send this name.
    values["served_model_name"] = spec.served_model_name or name
    try:
        return EngineSettings(**values)
    except ValidationError as error:
        raise _from_validation_error(error, "spec", rename=_SETTINGS_TO_SPEC) from None


def _vision_settings(spec: InferenceModelSpec) -> VisionSettings:
    if spec.vision is None:
        return VisionSettings()
    given = spec.vision.model_dump(by_alias=True, exclude_none=True)
    try:
        return VisionSettings(**{VISION_FIELDS[name]: value for name, value in given.items()})
    except ValidationError as error:
        raise _from_validation_error(error, "spec.vision", rename=_VISION_TO_SPEC) from None


def _check_rules(spec: InferenceModelSpec) -> None:
    if spec.accelerator == ACCELERATOR_CPU:
        if spec.tensor_parallel_size != 1:
            raise InvalidSpecError("spec.tensorParallelSize", "must be 1 with accelerator cpu")
        if spec.gpu_resource_name is not None:
            raise InvalidSpecError("spec.gpuResourceName", "has no meaning with accelerator cpu")
    cache = spec.cache
    if cache is not None and (cache.persistent_volume_claim is None) == (cache.empty_dir is None):
        raise InvalidSpecError("spec.cache", "takes exactly one of persistentVolumeClaim or emptyDir")
    _check_extra_args(spec.extra_args)
    _check_env(spec)


def _check_extra_args(extra_args: Sequence[str]) -> None:
    for flag in find_managed_flag_collisions(extra_args):
        raise InvalidSpecError("spec.extraArgs", f"{flag} is managed by the operator: {_managed_by(flag)}")
    for token, flag in find_abbreviated_managed_flags(extra_args):
        raise InvalidSpecError(
            "spec.extraArgs",
            f"{token} abbreviates {flag} (vLLM's parser accepts abbreviations), which is managed by "
            f"the operator: {_managed_by(flag)}",
        )


def find_abbreviated_managed_flags(extra_args: Sequence[str]) -> list[tuple[str, str]]:
    """(token, managed flag) for each option in `extra_args` that abbreviates a managed flag.

    vLLM's parser is an argparse parser with abbreviations allowed, so `--tensor-parallel 2`, and
    even `-t 2`, set --tensor-parallel-size behind our back. A prefix that unmanaged flags share is
    ambiguous for vLLM (an error there), so rejecting it here loses nothing.
    """
    managed = managed_flags()
    found: list[tuple[str, str]] = []
    for token in extra_args:
        if not token.startswith("-") or token in ("-", "--"):
            continue
        name = token.split("=", 1)[0]
        if name.startswith("--"):
            name = "--" + name[2:].replace("_", "-")
        if name in managed:
            continue  # an exact spelling: find_managed_flag_collisions reports it
        dashes = "--" if name.startswith("--") else "-"
        for flag in managed:
            # A long prefix abbreviates long flags only, a short one short flags only.
            if flag.startswith(name) and (flag.startswith("--") == (dashes == "--")):
                found.append((token, flag))
                break
    return found


def _managed_by(flag: str) -> str:
    if flag == MODEL_FLAG:
        return "set spec.model instead"
    if flag in VLLM_MEDIA_FLAGS:
        return "the runtime fetches and checks images itself; set spec.vision instead"
    for row in ENGINE_FLAGS:
        if flag in row.spellings and row.field in _SETTINGS_TO_SPEC:
            return f"set spec.{_SETTINGS_TO_SPEC[row.field]} instead"
    return "the runtime sets it"


def _check_env(spec: InferenceModelSpec) -> None:
    for var in spec.env:
        if var.name == ENV_HF_HOME:
            # Moving HF_HOME off the cache volume would silently drop the cache.
            raise InvalidSpecError("spec.env", f"{ENV_HF_HOME} is managed: it points at the cache volume")
        if var.name == ENV_HF_TOKEN and spec.hugging_face_token_secret is not None:
            raise InvalidSpecError(
                "spec.env", f"{ENV_HF_TOKEN} is set from spec.huggingFaceTokenSecret; give it in one place"
            )


def _from_validation_error(
    error: ValidationError, prefix: str, rename: Mapping[str, str] | None = None
) -> InvalidSpecError:
    """The first problem pydantic found, as `spec.field[0].sub` and its message."""
    first = error.errors()[0]
    path = prefix
    for part in first["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += "." + (rename or {}).get(str(part), str(part))
    message = first["msg"].removeprefix("Value error, ")
    if error.error_count() > 1:
        message += f" (and {error.error_count() - 1} more)"
    return InvalidSpecError(path, message)
