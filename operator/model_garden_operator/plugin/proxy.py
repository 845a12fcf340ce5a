"""Talking to a model's OpenAI API: through the API server's service proxy, or straight to a URL.

Through the cluster the base URL is `/api/v1/namespaces/NS/services/NAME:http/proxy` on the API
server, with the kubeconfig's credentials: no port-forward, and RBAC decides who may chat
(`create` on `services/proxy`). The API server strips the client's `Authorization` header before
forwarding, so an API key for the runtime travels as `X-API-Key`; with `--url` it is also sent as
`Authorization: Bearer`, as OpenAI clients do.

Streaming answers are read line by line as they arrive (`data: {...}` events, `data: [DONE]` last).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from model_garden_common import constants as C
from model_garden_operator.plugin.api import (
    PROXY_RESOURCE,
    USER_AGENT,
    Target,
    describe_failure,
    status_message,
    unreachable,
    verb_of,
)
from model_garden_operator.plugin.errors import NotReady, PluginError
from model_garden_operator.plugin.kubeconfig import Connection

API_KEY_HEADER: Final = "X-API-Key"
API_KEY_ENV: Final = "MODEL_GARDEN_API_KEY"
# Connecting is quick or broken; an answer may take long to start (a long prompt, a busy model).
TIMEOUT: Final = httpx.Timeout(30.0, read=600.0)


def proxy_base(namespace: str, service: str) -> str:
    """The service-proxy path of a model's Service (its port named `http`, see builders.build_service)."""
    return f"/api/v1/namespaces/{namespace}/services/{service}:{C.RUNTIME_PORT_NAME}/proxy"


def normalize_url(url: str) -> str:
    """`http://host:8000`, `.../v1` or `.../v1/` -> the base the OpenAI paths go under."""
    base = url.rstrip("/")
    return base.removesuffix("/v1")


@dataclass
class ModelEndpoint:
    """One model's OpenAI API, and how to describe its failures."""

    base_url: str
    model: str  # the served model name, sent as `model`
    headers: dict[str, str] = field(default_factory=dict)
    conn: Connection | None = None  # set when going through the API server's proxy
    namespace: str | None = None
    service: str | None = None
    _client: httpx.AsyncClient | None = None

    @classmethod
    def through_proxy(
        cls, conn: Connection, namespace: str, service: str, model: str, api_key: str | None
    ) -> ModelEndpoint:
        headers = {API_KEY_HEADER: api_key} if api_key else {}
        base = conn.server + proxy_base(namespace, service)
        return cls(base, model, headers, conn=conn, namespace=namespace, service=service)

    @classmethod
    def direct(cls, url: str, model: str, api_key: str | None) -> ModelEndpoint:
        headers = {API_KEY_HEADER: api_key, "Authorization": f"Bearer {api_key}"} if api_key else {}
        return cls(normalize_url(url), model, headers)

    def client(self) -> httpx.AsyncClient:
        """Made on first use, inside the event loop that uses it."""
        if self._client is None:
            kwargs: dict[str, Any] = self.conn.client_kwargs() if self.conn else {}
            kwargs["base_url"] = self.base_url
            headers = {"User-Agent": USER_AGENT, **self.headers}
            self._client = httpx.AsyncClient(**kwargs, headers=headers, timeout=TIMEOUT)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- failures -------------------------------------------------------------------------------
    def _where(self) -> str:
        if self.conn is None:
            return f"the model endpoint {self.base_url}"
        return f"the Kubernetes API server at {self.conn.describe()}"

    def _failure(self, response: httpx.Response, method: str) -> PluginError:
        status, message = response.status_code, status_message(response)
        openai_error = _is_openai_error(response)
        if self.conn is not None and not openai_error:
            # The API server's own answer about the proxying (auth, RBAC, the Service, its endpoints).
            target = Target(verb_of(method, True), PROXY_RESOURCE, self.namespace, self.service)
            if status == 404 and "not found" in message:
                return NotReady(
                    f'Service "{self.service}" not found in namespace "{self.namespace}": the operator has '
                    f"not created it (kubectl mg status {self.service} -n {self.namespace})"
                )
            if status in (502, 503) and (
                "no endpoints available" in message or "error trying to reach service" in message
            ):
                return NotReady(
                    f"model {self.service} has no pod ready to answer ({message}); "
                    f"kubectl mg status {self.service} -n {self.namespace}"
                )
            if status in (401, 403):
                return describe_failure(response, target, self.conn)
        return PluginError(f"the model answered HTTP {status}: {message}")

    async def _raise_for(self, response: httpx.Response, method: str) -> None:
        if response.status_code >= 400:
            await response.aread()
            raise self._failure(response, method)

    # --- the OpenAI routes ----------------------------------------------------------------------
    async def _post_stream(self, path: str, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """POST with stream=true; yield each event's JSON, stop at [DONE]."""
        try:
            async with self.client().stream("POST", path, json={**body, "stream": True}) as response:
                await self._raise_for(response, "POST")
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        event = json.loads(data)
                    except ValueError:
                        continue
                    if isinstance(event, dict) and isinstance(event.get("error"), Mapping):
                        raise PluginError(f"the model stopped with an error: {event['error'].get('message')}")
                    yield event
        except httpx.TransportError as error:
            raise unreachable(error, self._where()) from None

    async def _post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        try:
            response = await self.client().post(path, json=body)
        except httpx.TransportError as error:
            raise unreachable(error, self._where()) from None
        await self._raise_for(response, "POST")
        return response.json()  # type: ignore[no-any-return]

    async def chat_stream(
        self, messages: list[dict[str, Any]], params: Mapping[str, Any]
    ) -> AsyncIterator[str]:
        """The answer's text pieces as they arrive."""
        body = {"model": self.model, "messages": messages, **params}
        async for event in self._post_stream("/v1/chat/completions", body):
            for choice in event.get("choices") or ():
                if text := (choice.get("delta") or {}).get("content"):
                    yield text

    async def complete_stream(self, prompt: str, params: Mapping[str, Any]) -> AsyncIterator[str]:
        body = {"model": self.model, "prompt": prompt, **params}
        async for event in self._post_stream("/v1/completions", body):
            for choice in event.get("choices") or ():
                if text := choice.get("text"):
                    yield text

    async def complete(self, prompt: str, params: Mapping[str, Any]) -> str:
        answer = await self._post("/v1/completions", {"model": self.model, "prompt": prompt, **params})
        choices = answer.get("choices") or [{}]
        return str(choices[0].get("text") or "")

    async def first_model(self) -> str:
        """The first served model name at this endpoint (GET /v1/models)."""
        try:
            response = await self.client().get("/v1/models")
        except httpx.TransportError as error:
            raise unreachable(error, self._where()) from None
        await self._raise_for(response, "GET")
        data = response.json().get("data") or []
        if not data:
            raise NotReady(f"{self.base_url} serves no model yet")
        return str(data[0]["id"])


def _is_openai_error(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "error" in body and body.get("kind") != "Status"
