"""Our HTTP metrics, as one small pure-ASGI middleware on the hot path.

It replaces the prometheus-fastapi-instrumentator that vLLM's server uses: that one wraps every
streamed chunk in several layers of Python; this one adds a single closure call per chunk (for the
time to first token) and nothing else. vLLM's engine metrics (`vllm:*`) stay on /metrics as they are.

Metrics (documented in docs/metrics.md):
- model_garden_requests_total{route, method, status}
- model_garden_requests_in_flight{route}
- model_garden_request_duration_seconds{route} (histogram)
- model_garden_time_to_first_byte_seconds{route} (histogram; for streams, the first chunk)
- model_garden_requests_aborted_total{route} (the client went away before the response ended)
- model_garden_auth_failures_total{reason}
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

Scope = dict[str, Any]
Message = dict[str, Any]

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320)

REQUESTS = Counter("model_garden_requests", "HTTP requests answered", ["route", "method", "status"])
IN_FLIGHT = Gauge("model_garden_requests_in_flight", "HTTP requests being answered", ["route"])
DURATION = Histogram(
    "model_garden_request_duration_seconds",
    "Time from request to the end of the response",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
FIRST_BYTE = Histogram(
    "model_garden_time_to_first_byte_seconds",
    "Time from request to the first body bytes (for streams: the first token's chunk)",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
ABORTED = Counter(
    "model_garden_requests_aborted", "Requests whose client disconnected before the end", ["route"]
)
AUTH_FAILURES = Counter(
    "model_garden_auth_failures", "Requests refused for a missing or wrong API key", ["reason"]
)

UNMATCHED = "unmatched"
# Routes that are not worth a histogram sample each (probes, scrapes).
_UNTIMED = frozenset({"/health", "/livez", "/metrics"})


class MetricsMiddleware:
    def __init__(self, app: Any, routes: Iterable[str]) -> None:
        self.app = app
        # A fixed set of label values: unknown paths (scanners, typos) all count as "unmatched".
        self.routes = frozenset(routes)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = path if path in self.routes else UNMATCHED
        timed = route not in _UNTIMED
        started = time.perf_counter()
        status = 500
        first_byte = False
        finished = False

        async def send_with_metrics(message: Message) -> None:
            nonlocal status, first_byte, finished
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
            elif kind == "http.response.body":
                if not first_byte and message.get("body"):
                    first_byte = True
                    if timed:
                        FIRST_BYTE.labels(route).observe(time.perf_counter() - started)
                if not message.get("more_body", False):
                    finished = True
            await send(message)

        IN_FLIGHT.labels(route).inc()
        try:
            await self.app(scope, receive, send_with_metrics)
        except Exception:
            # Unhandled: the server's error middleware answers 500; not a client abort.
            status, finished = 500, True
            raise
        finally:
            IN_FLIGHT.labels(route).dec()
            if not finished:
                ABORTED.labels(route).inc()
            REQUESTS.labels(route, scope["method"], str(status)).inc()
            if timed:
                DURATION.labels(route).observe(time.perf_counter() - started)
