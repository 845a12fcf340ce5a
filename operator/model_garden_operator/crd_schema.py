"""The InferenceModel CustomResourceDefinition, written once as Python data.

THE one schema source: `crds/inferencemodels.modelgarden.io.yaml` is generated from it (a unit
test fails on drift), the operator parses specs against the same field names, and the chart and
the kubectl plugin take the CRD from `crds/`. Regenerate with `scripts/generate-crd.sh` or
`python -m model_garden_operator.crd_schema --write`.

The spec's fields live in `crd_spec_schema` (in sections, so a later `vision` section is one more
function there); this module adds the status, the names, printer columns and subresources.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from model_garden_common import constants as c
from model_garden_operator.crd_spec_schema import NAME_MAX_LENGTH, NAME_PATTERN, spec_schema
from model_garden_operator.openapi import Schema, array, cel_rule, integer, obj, string

CRD_NAME = f"{c.PLURAL}.{c.API_GROUP}"
# Only meaningful in a source checkout (the generator writes the committed file there).
CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / f"{CRD_NAME}.yaml"

PHASES: tuple[str, ...] = ("Pending", "Loading", "Ready", "Degraded", "Failed", "Stopped")
CONDITION_STATUSES: tuple[str, ...] = ("True", "False", "Unknown")

NAME_RULE = cel_rule(
    f"self.metadata.name.matches('{NAME_PATTERN}') && size(self.metadata.name) <= {NAME_MAX_LENGTH}",
    f"metadata.name must be a DNS-1035 label of at most {NAME_MAX_LENGTH} characters (lowercase "
    "letters, digits and '-', starting with a letter, ending with a letter or digit): it names the "
    "Service",
)


def status_schema() -> Schema:
    """The openAPIV3Schema of `.status`: exactly the operator's fields (Kopf keeps its own
    bookkeeping in annotations), so the API server prunes anything else."""
    condition = obj(
        "One aspect of the model's state (Kubernetes API conventions).",
        {
            "type": string("Ready, Progressing or Degraded."),
            "status": string("True, False or Unknown.", enum=list(CONDITION_STATUSES)),
            "reason": string("CamelCase reason of the last transition (e.g. WaitingForGPUs, ModelLoading)."),
            "message": string("Human-readable details."),
            "lastTransitionTime": string("When the condition last changed status.", format="date-time"),
            "observedGeneration": integer(
                "metadata.generation the condition was computed from.", format="int64", minimum=0
            ),
        },
        required=["type", "status"],
    )
    return obj(
        "Observed state of an InferenceModel, written by the operator.",
        {
            "phase": string(
                "Summary for people: Pending (no pod running yet), Loading (pods running, model "
                "loading), Ready, Degraded (some replicas not ready), Failed (the spec cannot "
                "work), Stopped (replicas is 0).",
                enum=list(PHASES),
            ),
            "conditions": array(
                "Ready, Progressing and Degraded, each with a reason and a message.",
                condition,
                **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
            ),
            "observedGeneration": integer(
                "metadata.generation the status was computed from.", format="int64", minimum=0
            ),
            "replicas": integer(
                "Runtime pods the model asks for (spec.replicas, as last reconciled); the scale subresource "
                "reads it.",
                format="int32",
            ),
            "readyReplicas": integer("Runtime pods that are serving.", format="int32"),
            "ready": string("readyReplicas/replicas, for `kubectl get`."),
            "endpoint": string(
                "In-cluster base URL of the OpenAI API, e.g. http://NAME.NAMESPACE.svc.cluster.local/v1."
            ),
            "selector": string("Label selector of the runtime pods (the scale subresource reads it)."),
        },
    )


def root_schema() -> Schema:
    return obj(
        "A model served by vLLM behind an OpenAI-compatible API; the Model Garden operator runs it "
        "as a Deployment and a Service of the same name.",
        {
            "apiVersion": string("Versioned schema of this object (modelgarden.io/v1alpha1)."),
            "kind": string("Kind of this object (InferenceModel)."),
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": status_schema(),
        },
        required=["spec"],
        rules=[NAME_RULE],
    )


PRINTER_COLUMNS: tuple[Schema, ...] = (
    {"name": "Model", "type": "string", "jsonPath": ".spec.model", "description": "Model served."},
    {
        "name": "TP",
        "type": "integer",
        "jsonPath": ".spec.tensorParallelSize",
        "description": "Tensor parallel size.",
    },
    {
        "name": "Quantization",
        "type": "string",
        "jsonPath": ".spec.quantization",
        "description": "Quantization.",
    },
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": ".status.ready",
        "description": "Ready/desired replicas.",
    },
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "Phase."},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {
        "name": "Endpoint",
        "type": "string",
        "jsonPath": ".status.endpoint",
        "priority": 1,
        "description": "OpenAI base URL.",
    },
)


def crd_manifest() -> Schema:
    """The full CustomResourceDefinition (apiextensions.k8s.io/v1) as a dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {c.LABEL_NAME: c.APP_NAME}},
        "spec": {
            "group": c.API_GROUP,
            "names": {
                "kind": c.KIND,
                "listKind": f"{c.KIND}List",
                "plural": c.PLURAL,
                "singular": c.KIND.lower(),
                "shortNames": [c.SHORT_NAME],
                "categories": [c.APP_NAME],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": c.API_VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root_schema()},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": list(PRINTER_COLUMNS),
                }
            ],
        },
    }


HEADER = (
    "# Generated from operator/model_garden_operator/crd_schema.py; do not edit.\n"
    "# Regenerate: scripts/generate-crd.sh\n"
)


def render_crd_yaml() -> str:
    """The CRD as YAML, byte-for-byte stable (insertion order, no key sorting)."""
    body = yaml.safe_dump(crd_manifest(), sort_keys=False, width=100, allow_unicode=True)
    return HEADER + body


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print (or write) the InferenceModel CRD.")
    parser.add_argument(
        "--write",
        nargs="?",
        const=str(CRD_FILE),
        metavar="PATH",
        help=f"write it to PATH (default: {CRD_FILE}) instead of printing it",
    )
    args = parser.parse_args(argv)
    text = render_crd_yaml()
    if args.write:
        Path(args.write).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
