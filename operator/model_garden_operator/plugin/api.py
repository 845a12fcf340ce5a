"""The few Kubernetes API calls the plugin makes, with each failure turned into one line for a person.

Plain httpx against the API server (the same paths kubectl uses): InferenceModels, their Pods and
Events. The answers are plain dicts. `describe_failure` is shared with the service proxy
(proxy.py), since the API server answers a proxied request's own failures (403, 503 "no
endpoints") with the same Status bodies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from model_garden import __version__
from model_garden_common import constants as C
from model_garden_operator.plugin.errors import ApiUnreachable, ConfigError, Forbidden, NotFound, PluginError
from model_garden_operator.plugin.kubeconfig import Connection

USER_AGENT: Final = f"kubectl-mg/{__version__}"
MODELS_PATH: Final = f"/apis/{C.API_GROUP}/{C.API_VERSION}"
MODEL_RESOURCE: Final = f"{C.PLURAL}.{C.API_GROUP}"
PROXY_RESOURCE: Final = "services/proxy"
_VERBS: Final = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_ERRNO = re.compile(r"^\[Errno -?\d+\]\s*")


@dataclass(frozen=True)
class Target:
    """What a request was about, to explain its failure: verb, resource, namespace, name."""

    verb: str
    resource: str
    namespace: str | None
    name: str | None = None

    def where(self) -> str:
        return f' in namespace "{self.namespace}"' if self.namespace else " cluster-wide"


def status_message(response: httpx.Response) -> str:
    """The message of a Kubernetes Status body, an OpenAI error body, or the text itself."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text.splitlines()[0] if text else response.reason_phrase
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if body.get("message"):
            return str(body["message"])
    return response.reason_phrase


def forbidden(target: Target, server_message: str = "") -> Forbidden:
    what = f"{target.verb} {target.resource}{target.where()}"
    if target.resource == PROXY_RESOURCE:
        return Forbidden(
            f"forbidden: your kubeconfig user may not {what}, which chatting through the API server "
            "needs; ask a cluster admin to bind the chart's opt-in ClusterRole for it (`kubectl create "
            "rolebinding model-chat --clusterrole=model-garden-service-proxy --user=YOU "
            f"-n {target.namespace}`, or any role with get,create on services/proxy), or use --url "
            "with an endpoint you can reach"
        )
    return Forbidden(f"forbidden: your kubeconfig user may not {what} ({server_message})")


def describe_failure(response: httpx.Response, target: Target, conn: Connection | None = None) -> PluginError:
    """The one-line error for an API server answer of 400 or more."""
    message = status_message(response)
    status = response.status_code
    if status == 401:
        where = f" at {conn.describe()}" if conn else ""
        return ConfigError(
            f"the API server{where} rejected your credentials (401 Unauthorized): log in again or "
            "check the kubeconfig's user"
        )
    if status == 403:
        return forbidden(target, message)
    if status == 404 and "could not find the requested resource" in message:
        return NotFound(
            "the InferenceModel API (modelgarden.io) is not installed in this cluster: install the "
            "model-garden chart (or kubectl apply -f crds/)"
        )
    if status == 404 and target.resource == MODEL_RESOURCE and target.name:
        return NotFound(
            f'InferenceModel "{target.name}" not found{target.where()} '
            "(kubectl mg list -A shows the models in every namespace)"
        )
    if status == 404 and target.namespace and f'namespaces "{target.namespace}" not found' in message:
        return NotFound(f'namespace "{target.namespace}" not found')
    return PluginError(f"{target.verb} {target.resource}{target.where()}: {message} (HTTP {status})")


def unreachable(error: httpx.TransportError, where: str) -> ApiUnreachable:
    if isinstance(error, httpx.TimeoutException):
        return ApiUnreachable(f"{where} did not answer in time ({type(error).__name__})")
    reason = _ERRNO.sub(
        "", str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    )
    if "CERTIFICATE_VERIFY_FAILED" in reason:
        reason = f"TLS certificate verification failed ({reason})"
    return ApiUnreachable(f"cannot reach {where}: {reason.rstrip('.')}")


class KubeApi:
    """Synchronous calls to one API server as the kubeconfig's user."""

    def __init__(self, conn: Connection, *, timeout: float = 30.0) -> None:
        self.conn = conn
        self._client = httpx.Client(
            **conn.client_kwargs(),
            timeout=timeout,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> KubeApi:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        target: Target,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        try:
            response = self._client.request(method, path, json=body, params=params)
        except httpx.TransportError as error:
            failure = unreachable(error, f"the Kubernetes API server at {self.conn.describe()}")
            failure.message += "; is the cluster up, and are KUBECONFIG and --context right?"
            raise failure from None
        if response.status_code >= 400:
            raise describe_failure(response, target, self.conn)
        try:
            payload = response.json()
        except ValueError:
            raise PluginError(f"the API server answered {path} with something that is not JSON") from None
        return payload if isinstance(payload, dict) else {}

    # --- InferenceModels ----------------------------------------------------------------------
    @staticmethod
    def models_path(namespace: str | None, name: str | None = None) -> str:
        path = MODELS_PATH + (f"/namespaces/{namespace}" if namespace else "") + f"/{C.PLURAL}"
        return f"{path}/{name}" if name else path

    def get_model(self, namespace: str, name: str) -> dict[str, Any]:
        target = Target("get", MODEL_RESOURCE, namespace, name)
        return self.request("GET", self.models_path(namespace, name), target)

    def list_models(self, namespace: str | None) -> list[dict[str, Any]]:
        target = Target("list", MODEL_RESOURCE, namespace)
        items = self.request("GET", self.models_path(namespace), target).get("items") or []
        return sorted(items, key=lambda m: (m["metadata"].get("namespace", ""), m["metadata"]["name"]))

    def create_model(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        target = Target("create", MODEL_RESOURCE, namespace, name)
        try:
            return self.request("POST", self.models_path(namespace), target, body=dict(obj))
        except PluginError as error:
            if "already exists" in error.message:
                raise PluginError(
                    f'InferenceModel "{name}" already exists in namespace "{namespace}": change it with '
                    f"kubectl edit im {name}, or kubectl mg delete {name} first"
                ) from None
            raise

    def delete_model(self, namespace: str, name: str) -> dict[str, Any]:
        target = Target("delete", MODEL_RESOURCE, namespace, name)
        return self.request("DELETE", self.models_path(namespace, name), target)

    # --- what `status` shows beside the model ---------------------------------------------------
    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        target = Target("list", "pods", namespace)
        params = {"labelSelector": selector}
        return (
            self.request("GET", f"/api/v1/namespaces/{namespace}/pods", target, params=params)["items"] or []
        )

    def list_events(self, namespace: str) -> list[dict[str, Any]]:
        target = Target("list", "events", namespace)
        return self.request("GET", f"/api/v1/namespaces/{namespace}/events", target).get("items") or []


def verb_of(method: str, has_name: bool) -> str:
    """The RBAC verb the API server checks for an HTTP method."""
    if method == "GET":
        return "get" if has_name else "list"
    return _VERBS.get(method, method.lower())
