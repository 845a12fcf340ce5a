"""Pure builders: an InferenceModel (+ the operator's configuration) -> its Deployment, Service and
NetworkPolicy.

Plain dicts, deterministic: the same input gives the same bytes (flags in table order, our env
sorted by name), and each object carries a spec-hash annotation so the reconciler can tell
"unchanged" with one string comparison. No Kopf here, no API calls, no ownerReferences: the
reconciler adopts the objects (kopf.adopt) before applying them.

Each builder takes the InferenceModel object (dict) or an already parsed `InferenceModel`, and
raises `spec.InvalidSpecError` for a spec that cannot work.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from model_garden_common import constants as c
from model_garden_operator.builders_pod import build_pod_spec, pod_annotations
from model_garden_operator.config import OperatorConfig
from model_garden_operator.spec import InferenceModel, InvalidSpecError, parse_model

ModelInput = Mapping[str, Any] | InferenceModel

# A Deployment that makes no progress for this long is marked ProgressDeadlineExceeded; it must
# outlast the startup probe's budget plus scheduling and a large image pull.
PROGRESS_DEADLINE_SECONDS = c.STARTUP_PROBE_PERIOD_SECONDS * c.STARTUP_PROBE_FAILURE_THRESHOLD + 600

# The cloud instance metadata service (AWS, GCP, Azure, OpenStack, ...; and AWS's IPv6 address):
# node credentials live there, so runtime pods may not reach it. Only these single addresses: the
# rest of link-local (169.254.0.0/16) carries NodeLocal DNSCache (169.254.20.10) on many clusters.
METADATA_CIDRS_V4: tuple[str, ...] = ("169.254.169.254/32",)
METADATA_CIDRS_V6: tuple[str, ...] = ("fd00:ec2::254/128",)


def _parsed(model: ModelInput) -> InferenceModel:
    return model if isinstance(model, InferenceModel) else parse_model(model)


def selector_labels(name: str) -> dict[str, str]:
    """Labels that select one InferenceModel's runtime pods (the Deployment's immutable selector).

    The component is part of it: the chart labels the operator's own pods with the same
    app.kubernetes.io/name and the release as instance, which a model may share a name with.
    """
    return {
        c.LABEL_NAME: c.APP_NAME,
        c.LABEL_INSTANCE: name,
        c.LABEL_COMPONENT: c.COMPONENT_RUNTIME,
    }


def common_labels(name: str) -> dict[str, str]:
    """Labels on everything the operator creates for an InferenceModel."""
    return {
        c.LABEL_NAME: c.APP_NAME,
        c.LABEL_INSTANCE: name,
        c.LABEL_MANAGED_BY: c.MANAGED_BY,
        c.LABEL_COMPONENT: c.COMPONENT_RUNTIME,
    }


def selector_string(name: str) -> str:
    """selector_labels as a label-selector string (for status.selector and list calls)."""
    return ",".join(f"{key}={value}" for key, value in sorted(selector_labels(name).items()))


def spec_hash(obj: Mapping[str, Any]) -> str:
    """A short, stable hash of a manifest (key order does not matter)."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _with_hash(obj: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    """Set the spec-hash annotation in `metadata` (part of `obj`) from the rest of `obj`."""
    metadata.setdefault("annotations", {}).pop(c.ANNOTATION_SPEC_HASH, None)
    metadata["annotations"][c.ANNOTATION_SPEC_HASH] = spec_hash(obj)
    return obj


def _metadata(model: InferenceModel) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": model.name}
    if model.namespace:
        metadata["namespace"] = model.namespace
    metadata["labels"] = common_labels(model.name)
    metadata["annotations"] = {c.ANNOTATION_MODEL: model.spec.model}
    return metadata


def _strategy(model: InferenceModel) -> dict[str, Any]:
    # GPU: a surge pod would wait for GPUs that a full pool does not have, so replace in place.
    # CPU: nothing to run short of, so surge one pod first and never drop capacity.
    rolling = {"maxSurge": 1, "maxUnavailable": 0} if model.is_cpu else {"maxSurge": 0, "maxUnavailable": 1}
    return {"type": "RollingUpdate", "rollingUpdate": rolling}


def build_deployment(model: ModelInput, config: OperatorConfig) -> dict[str, Any]:
    """The Deployment that runs the model's runtime pods."""
    m = _parsed(model)
    template_metadata: dict[str, Any] = {
        "labels": common_labels(m.name),
        "annotations": pod_annotations(m),
    }
    template = {"metadata": template_metadata, "spec": build_pod_spec(m, config)}
    # The pod template's own hash: it changes exactly when the pods must be replaced.
    _with_hash(template, template_metadata)
    metadata = _metadata(m)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": m.spec.replicas,
            "selector": {"matchLabels": selector_labels(m.name)},
            "strategy": _strategy(m),
            "progressDeadlineSeconds": PROGRESS_DEADLINE_SECONDS,
            "template": template,
        },
    }
    return _with_hash(deployment, metadata)


def build_service(model: ModelInput, config: OperatorConfig) -> dict[str, Any]:
    """The Service in front of the runtime pods: service.port (named http) -> the runtime's port."""
    m = _parsed(model)
    metadata = _metadata(m)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": m.spec.service.type,
            "selector": selector_labels(m.name),
            "ports": [
                {
                    "name": c.RUNTIME_PORT_NAME,
                    "port": m.spec.service.port,
                    "targetPort": c.RUNTIME_PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }
    return _with_hash(service, metadata)


def build_network_policy(model: ModelInput, config: OperatorConfig) -> dict[str, Any]:
    """The NetworkPolicy of the model's runtime pods (the reconciler applies it when
    `config.network_policy` is on).

    Ingress: the runtime's HTTP port only (TCP), from anywhere: the Service, in-cluster clients,
    Prometheus, the API server's service proxy (`kubectl mg chat`). Probes come from the kubelet.
    Egress: open but for the cloud metadata address, since weights are downloaded at start
    (Hugging Face, a mirror, object storage). Two rules, because CNIs read ipBlocks differently:
    pods of every namespace (DNS, in-cluster model stores; Cilium, for one, matches no pod with
    0.0.0.0/0), then every address except the metadata service.
    """
    m = _parsed(model)
    metadata = _metadata(m)
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata,
        "spec": {
            "podSelector": {"matchLabels": selector_labels(m.name)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": c.RUNTIME_PORT}]}],
            "egress": [
                {"to": [{"namespaceSelector": {}}]},
                {
                    "to": [
                        {"ipBlock": {"cidr": "0.0.0.0/0", "except": list(METADATA_CIDRS_V4)}},
                        {"ipBlock": {"cidr": "::/0", "except": list(METADATA_CIDRS_V6)}},
                    ]
                },
            ],
        },
    }
    return _with_hash(policy, metadata)


def endpoint_url(model: ModelInput, config: OperatorConfig) -> str:
    """In-cluster base URL of the model's OpenAI API, for status.endpoint."""
    m = _parsed(model)
    if not m.namespace:
        raise InvalidSpecError("metadata.namespace", "is required to name the endpoint")
    port = m.spec.service.port
    host = f"{m.name}.{m.namespace}.svc.{config.cluster_domain}"
    return f"http://{host}/v1" if port == 80 else f"http://{host}:{port}/v1"
