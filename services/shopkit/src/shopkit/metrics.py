"""`/metrics`: HTTP metrics from prometheus-fastapi-instrumentator plus the process's memory budget.

Only the HTTP series the dashboard, the alerts and the bench read are recorded (the instrumentator's defaults add
request and response sizes and a second, coarse latency histogram per handler, all paid for on every request).
"""

from typing import Any

from fastapi import FastAPI
from prometheus_client import Counter, Gauge, Histogram
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator.metrics import Info
from prometheus_fastapi_instrumentator.middleware import PrometheusInstrumentatorMiddleware
from starlette.requests import Request

from shopkit.probes import ProbeState, cgroup_memory_limit, resident_memory_bytes

MEMORY_BUDGET = Gauge("shop_memory_budget_bytes", "Resident memory above which liveness fails (0: no budget)")
MEMORY_LIMIT = Gauge("shop_memory_limit_bytes", "The container's cgroup memory limit (0: none)")
RESIDENT_MEMORY = Gauge("shop_resident_memory_bytes", "Resident memory of the process, read at scrape time")

EXCLUDED_HANDLERS = ["/metrics", "/healthz", "/ready"]
REQUESTS = Counter(
    "http_requests_total", "Total number of requests by method, status and handler.", ["handler", "method", "status"]
)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
"""From a cache hit (about a millisecond) to the longest deadline: fine enough for a p50 and a p99."""
LATENCY = Histogram(
    "http_request_duration_highr_seconds",
    "Latency of every HTTP request (no labels: many buckets, one series)",
    buckets=LATENCY_BUCKETS,
)


def record(info: Info) -> None:
    REQUESTS.labels(info.modified_handler, info.method, info.modified_status).inc()
    LATENCY.observe(info.modified_duration)


class HandlerMemoMiddleware(PrometheusInstrumentatorMiddleware):
    """The instrumentator's middleware, remembering which handler a method and path resolve to: matching every
    request against every route cost more than the rest of a cache hit, and the routes never change once built."""

    MAX_REMEMBERED, MAX_PATH = 4096, 256
    """Paths carry ids (`/payments/{id}`): the memo is emptied when full and keeps only short paths."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handlers: dict[tuple[str, str, str], tuple[str, bool]] = {}

    def _get_handler(self, request: Request) -> tuple[str, bool]:
        scope = request.scope
        key = (scope["method"], scope.get("root_path", ""), scope["path"])
        handler = self._handlers.get(key)
        if handler is None:
            handler = super()._get_handler(request)
            if len(self._handlers) >= self.MAX_REMEMBERED:
                self._handlers.clear()
            if len(scope["path"]) <= self.MAX_PATH:
                self._handlers[key] = handler
        return handler


def install_metrics(app: FastAPI, probes: ProbeState) -> None:
    app.add_middleware(
        HandlerMemoMiddleware,
        excluded_handlers=EXCLUDED_HANDLERS,
        should_group_status_codes=False,  # "503", not "5xx": the alerts match status=~"5.."
        instrumentations=[record],
    )
    Instrumentator().expose(app, include_in_schema=False)
    MEMORY_BUDGET.set_function(lambda: probes.memory_budget or 0)
    MEMORY_LIMIT.set_function(lambda: cgroup_memory_limit() or 0)
    RESIDENT_MEMORY.set_function(resident_memory_bytes)
