"""Names and numbers that several pieces select on: the runtime, the operator's builders,
the Dockerfiles, the Helm chart and the kubectl plugin. Tests read these instead of
repeating literals, so a change here is a change everywhere (or a failing test).

This module imports nothing heavy: the slim operator image uses it.
"""

from __future__ import annotations

from typing import Final

# --- The runtime container -------------------------------------------------------------
RUNTIME_PORT: Final = 8000
RUNTIME_PORT_NAME: Final = "http"
# Non-root user of the runtime image (and the pod's runAsUser / fsGroup).
RUNTIME_UID: Final = 1000
RUNTIME_GID: Final = 1000
# The one model cache directory: HF_HOME in the image and in operator-managed pods.
MODEL_CACHE_DIR: Final = "/models"

# --- Routes ----------------------------------------------------------------------------
# Answers 200 while the process lives, model or not: the liveness probe.
LIVENESS_PATH: Final = "/livez"
# 200 only when a model is loaded and the engine answers: startup and readiness probes.
HEALTH_PATH: Final = "/health"
METRICS_PATH: Final = "/metrics"
OPENAI_PREFIXES: Final = ("/v1", "/api/v1")
MANAGEMENT_PREFIX: Final = "/api/v1/inference"

# --- Kubernetes API group of the custom resource ----------------------------------------
API_GROUP: Final = "modelgarden.io"
API_VERSION: Final = "v1alpha1"
KIND: Final = "InferenceModel"
PLURAL: Final = "inferencemodels"
SHORT_NAME: Final = "im"

# --- Labels and annotations ------------------------------------------------------------
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
APP_NAME: Final = "model-garden"
MANAGED_BY: Final = "model-garden-operator"
COMPONENT_RUNTIME: Final = "runtime"
COMPONENT_OPERATOR: Final = "operator"
# `org/model` is not a valid label value, so the model id travels in an annotation.
ANNOTATION_MODEL: Final = f"{API_GROUP}/model"

# --- Vision ---------------------------------------------------------------------------
# Largest image (encoded bytes) a client sends before the CRD's `vision` section says otherwise.
DEFAULT_MAX_IMAGE_BYTES: Final = 10 * 1024 * 1024

# --- Operator-managed runtime pods ------------------------------------------------------
# The Service's port when `spec.service.port` is not given; it maps to RUNTIME_PORT.
DEFAULT_SERVICE_PORT: Final = 80
# On every object the operator writes (and on the pod template): a hash of what it rendered,
# so "nothing changed" is one string comparison and an idle resync writes nothing.
ANNOTATION_SPEC_HASH: Final = f"{API_GROUP}/spec-hash"
# The startup probe (on HEALTH_PATH) allows PERIOD x THRESHOLD seconds (30 minutes) for a model
# to download and load before the kubelet restarts the container.
STARTUP_PROBE_PERIOD_SECONDS: Final = 10
STARTUP_PROBE_FAILURE_THRESHOLD: Final = 180
# Graceful drain of a runtime pod. preStop pauses first, so Service endpoints drop the pod before
# SIGTERM arrives; the runtime then finishes in-flight requests for at most DRAIN_TIMEOUT_SECONDS
# (its graceful-shutdown timeout); the grace period covers both plus a margin to exit cleanly.
PRESTOP_SLEEP_SECONDS: Final = 10
DRAIN_TIMEOUT_SECONDS: Final = 120
TERMINATION_GRACE_PERIOD_SECONDS: Final = PRESTOP_SLEEP_SECONDS + DRAIN_TIMEOUT_SECONDS + 15
