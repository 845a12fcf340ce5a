"""Kopf handlers: fetch, build (pure), apply idempotently, report. Nothing else lives here.

One `reconcile` serves resume, create and update of an InferenceModel. Events of its Deployment,
Service and NetworkPolicy (watched by our managed-by label) run the same sync, which recreates a
child deleted by hand and restores one edited by hand; events of its Pods only refresh the status, from a Kopf
index that keeps a few strings per pod (`status.summarize_pod`).

Everything is registered on a registry made by `make_registry()`, not at import time, so each
operator run (and each test) gets its own; clients and configuration are made in the startup
handler and kept in `memo`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import datetime
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from model_garden_common import constants as C
from model_garden_operator.builders import (
    build_deployment,
    build_network_policy,
    build_service,
    endpoint_url,
    selector_string,
)
from model_garden_operator.config import OperatorConfig
from model_garden_operator.kube import (
    DEPLOYMENTS,
    INFERENCE_MODELS,
    NETWORK_POLICIES,
    SECRETS,
    SERVICES,
    ApiError,
    KubeClient,
    apply,
)
from model_garden_operator.spec import InferenceModel, InvalidSpecError, parse_model
from model_garden_operator.status import PodSummary, Problem, derive_status, status_patch, summarize_pod

MODEL = (C.API_GROUP, C.API_VERSION, C.PLURAL)
MANAGED = {C.LABEL_MANAGED_BY: C.MANAGED_BY}
MANAGED_SELECTOR = f"{C.LABEL_MANAGED_BY}={C.MANAGED_BY}"
KINDS = {"NetworkPolicy": NETWORK_POLICIES, "Deployment": DEPLOYMENTS, "Service": SERVICES}
# How soon a model waiting for its Secret is looked at again (a Secret is not watched).
SECRET_RETRY_DELAY = 30.0


@dataclass
class Context:
    """What the handlers share, made once at startup and kept in memo."""

    config: OperatorConfig
    client: KubeClient
    locks: collections.defaultdict[tuple[str, str], asyncio.Lock] = field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock)
    )


class MissingSecret(Exception):
    pass


def credentials(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo:
    """The service account in a pod, else the kubeconfig ($KUBECONFIG, read now, or ~/.kube/config).

    A kubeconfig user with a token, a client certificate or a password is read directly; one that
    needs an exec plugin or an auth provider (EKS, GKE, OIDC) goes through the official client,
    which runs it.
    """
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(settings=settings)
    has_secret = info is not None and (
        info.token or info.certificate_path or info.certificate_data or info.username
    )
    if not has_secret:
        info = kopf.login_via_client(settings=settings, logger=logging.getLogger(__name__)) or info
    if info is None:
        raise kopf.LoginError("no service account token and no kubeconfig found")
    return info


def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
    # Our own login instead of Kopf's defaults, so that Kopf and KubeClient always talk to the
    # same server as the same user (and a test's $KUBECONFIG is read when the operator starts).
    return credentials(settings)


async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Kopf's bookkeeping goes in annotations: status holds exactly the fields the CRD declares.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=C.API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=C.API_GROUP, key="last-handled-configuration"
    )
    # Events only when a handler calls kopf.info/warn, never one per log line.
    settings.posting.loggers = False
    # Server-side selectors: the operator never lists or holds the cluster's other pods.
    for selector in (
        ("apps", "deployments"),
        ("v1", "services"),
        ("v1", "pods"),
        ("networking.k8s.io", "networkpolicies"),
    ):
        settings.watching.label_selectors[selector] = MANAGED_SELECTOR
    config = memo.get("config") or OperatorConfig.from_env()
    client = KubeClient.connect(credentials(settings), relogin=lambda: credentials(settings))
    memo["ctx"] = Context(config=config, client=client)


async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    ctx: Context | None = memo.get("ctx")
    if ctx is not None:
        await ctx.client.close()


def model_pods(namespace: str, labels: Mapping[str, str], body: kopf.Body, **_: Any) -> dict[Any, PodSummary]:
    """Index: (namespace, model name) -> summaries of the model's pods."""
    instance = labels.get(C.LABEL_INSTANCE)
    return {(namespace, instance): summarize_pod(body)} if instance else {}


async def _secret_value(client: KubeClient, namespace: str, field_path: str, name: str, key: str) -> str:
    """The text under `key` of Secret `name`; MissingSecret naming `field_path` when there is none."""
    secret = await client.get(SECRETS, namespace, name)
    if secret is None:
        raise MissingSecret(f"{field_path}: Secret {name!r} not found")
    data, string_data = secret.get("data") or {}, secret.get("stringData") or {}
    if key in string_data:  # only an unsaved object (or the test emulator) has stringData
        return str(string_data[key])
    if key not in data:
        raise MissingSecret(f"{field_path}: Secret {name!r} has no key {key!r}")
    try:
        return base64.b64decode(data[key] or "").decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return ""


def has_api_key(text: str) -> bool:
    """Whether a key file holds a key: the runtime's rule (model_garden.auth.read_keys) skips blank
    lines and `#` comments. The operator image does not import the runtime's auth module."""
    return any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines())


async def _check_secrets(client: KubeClient, model: InferenceModel) -> None:
    if model.namespace is None:
        return
    token = model.spec.hugging_face_token_secret
    if token is not None:
        await _secret_value(client, model.namespace, "spec.huggingFaceTokenSecret", token.name, token.key)
    keys = model.spec.api_key_secret
    if keys is not None:
        text = await _secret_value(client, model.namespace, "spec.apiKeySecret", keys.name, keys.key)
        # An empty key file would start the runtime with no key at all: open to every client.
        if not has_api_key(text):
            raise MissingSecret(
                f"spec.apiKeySecret: key {keys.key!r} of Secret {keys.name!r} holds no API key "
                "(one per line; blank lines and # comments are skipped)"
            )


def _join(kinds: list[str]) -> str:
    return kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} and {kinds[-1]}"


def _report_changes(model: Mapping[str, Any], actions: dict[str, str], reconciling: bool) -> None:
    created = [kind for kind, action in actions.items() if action == "created"]
    patched = [kind for kind, action in actions.items() if action == "patched"]
    if created:
        why = "" if reconciling else " (it had been deleted)"
        kopf.info(model, reason="Created", message=f"Created {_join(created)}{why}")
    if patched:
        why = "to match the spec" if reconciling else "(it had been changed outside the operator)"
        kopf.info(model, reason="Updated", message=f"Updated {_join(patched)} {why}")


async def sync(
    ctx: Context,
    model: Mapping[str, Any],
    pods: list[PodSummary],
    logger: logging.Logger | logging.LoggerAdapter[Any],
    *,
    children: bool = True,
    reconciling: bool = False,
) -> Problem | None:
    """Apply the model's children (or only read them) and patch the status keys that changed."""
    namespace, name = model["metadata"]["namespace"], model["metadata"]["name"]
    problem: Problem | None = None
    deployment: dict[str, Any] | None = None
    endpoint: str | None = None
    try:
        parsed = parse_model(model)
        endpoint = endpoint_url(parsed, ctx.config)
        if children:
            await _check_secrets(ctx.client, parsed)
            desired: dict[str, dict[str, Any]] = {}
            if ctx.config.network_policy:
                # First, so the pods never run without it.
                desired["NetworkPolicy"] = build_network_policy(parsed, ctx.config)
            desired["Deployment"] = build_deployment(parsed, ctx.config)
            desired["Service"] = build_service(parsed, ctx.config)
            kopf.adopt(list(desired.values()), owner=model)  # type: ignore[arg-type]
            applied = {kind: await apply(ctx.client, KINDS[kind], obj) for kind, obj in desired.items()}
            deployment = applied["Deployment"].obj
            _report_changes(model, {kind: a.action for kind, a in applied.items()}, reconciling)
        else:
            deployment = await ctx.client.get(DEPLOYMENTS, namespace, name)
    except InvalidSpecError as exc:
        problem = Problem("InvalidSpec", f"{exc.field_path}: {exc.message}")
    except MissingSecret as exc:
        problem = Problem("MissingSecret", str(exc))

    status = derive_status(
        model,
        deployment,
        pods,
        endpoint=endpoint if problem is None else None,
        selector=selector_string(name),
        gpu_resource_name=ctx.config.gpu_resource_name,
        now=datetime.datetime.now(datetime.UTC),
        problem=problem,
    )
    previous = model.get("status") or {}
    patch = status_patch(previous, status)
    if patch:
        logger.debug("status changes: %s", patch)
        await ctx.client.patch(INFERENCE_MODELS, namespace, name, {"status": patch}, subresource="status")
    if "phase" in patch:
        _report_phase(model, status)
    return problem


def _report_phase(model: Mapping[str, Any], status: Mapping[str, Any]) -> None:
    # One event per phase change worth a person's attention, none for the steps in between.
    if status["phase"] in ("Failed", "Degraded"):
        degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
        kopf.warn(model, reason=degraded["reason"], message=degraded["message"])
    elif status["phase"] == "Ready":
        kopf.info(
            model, reason="Ready", message=f"{status['ready']} replicas ready at {status.get('endpoint')}"
        )


def _pods(index: kopf.Index[Any, PodSummary], namespace: str, name: str) -> list[PodSummary]:
    return list(index.get((namespace, name), []))


async def reconcile(
    namespace: str,
    name: str,
    memo: kopf.Memo,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    model_pods: kopf.Index[Any, PodSummary],
    **_: Any,
) -> None:
    """Resume, create, update: one level-triggered pass over the model."""
    ctx: Context = memo["ctx"]
    async with ctx.locks[namespace, name]:
        try:
            # Kopf's body can be a step behind a status write of a pod event; re-read, so the
            # status diff is against what the server holds.
            model = await ctx.client.get(INFERENCE_MODELS, namespace, name)
            if model is None:
                return  # deleted meanwhile: the garbage collector has the children
            problem = await sync(ctx, model, _pods(model_pods, namespace, name), logger, reconciling=True)
        except ApiError as exc:
            raise kopf.TemporaryError(f"Kubernetes API: {exc}", delay=5) from exc
    if problem is not None and problem.reason == "MissingSecret":
        raise kopf.TemporaryError(problem.message, delay=SECRET_RETRY_DELAY)
    if problem is not None:
        raise kopf.PermanentError(problem.message)


async def _refresh(
    memo: kopf.Memo,
    namespace: str,
    name: str,
    index: kopf.Index[Any, PodSummary],
    logger: logging.Logger | logging.LoggerAdapter[Any],
    children: bool,
) -> None:
    ctx: Context = memo["ctx"]
    async with ctx.locks[namespace, name]:
        model = await ctx.client.get(INFERENCE_MODELS, namespace, name)
        if model is None or model["metadata"].get("deletionTimestamp"):
            return  # going away: the garbage collector removes the children
        try:
            await sync(ctx, model, _pods(index, namespace, name), logger, children=children)
        except ApiError as exc:
            logger.warning("could not sync %s/%s: %s", namespace, name, exc)


async def on_managed_event(
    type: str | None,
    resource: kopf.Resource,
    namespace: str,
    labels: Mapping[str, str],
    memo: kopf.Memo,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    model_pods: kopf.Index[Any, PodSummary],
    **_: Any,
) -> None:
    """A model's Deployment, Service, NetworkPolicy or pod changed or went away.

    A child's change may be drift to undo, and moves readiness; a pod's change moves only the status
    (its phase: Pending, Loading, crash loops...), so the children are not compared for it.
    """
    # type None is the initial listing at startup, which the resume handlers already cover.
    if type is not None and (instance := labels.get(C.LABEL_INSTANCE)):
        children = resource.plural != "pods"
        await _refresh(memo, namespace, instance, model_pods, logger, children=children)


def make_registry() -> kopf.OperatorRegistry:
    """A registry with every handler of the operator (a fresh one per operator run or test)."""
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(login)
    kopf.on.startup(registry=registry)(startup)
    kopf.on.cleanup(registry=registry)(cleanup)
    for cause in (kopf.on.resume, kopf.on.create, kopf.on.update):
        cause(*MODEL, registry=registry)(reconcile)
    kopf.index("v1", "pods", labels=MANAGED, registry=registry)(model_pods)
    for group_version, plural in (
        ("apps/v1", "deployments"),
        ("v1", "services"),
        ("networking.k8s.io/v1", "networkpolicies"),
        ("v1", "pods"),
    ):
        kopf.on.event(group_version, plural, labels=MANAGED, registry=registry)(on_managed_event)
    return registry
