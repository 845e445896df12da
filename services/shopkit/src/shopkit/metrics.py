"""`/metrics`: HTTP metrics from prometheus-fastapi-instrumentator plus the process's memory budget.

Only the HTTP series the dashboard, the alerts and the bench read are recorded (the instrumentator's defaults add
request and response sizes and a second, coarse latency histogram per handler, all paid for on every request).
"""

from typing import Any

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_fastapi_instrumentator.metrics import Info
from prometheus_fastapi_instrumentator.middleware import PrometheusInstrumentatorMiddleware
from starlette.requests import Request
from starlette.responses import Response

from shopkit.probes import ProbeState, resident_memory_bytes

MEMORY_BUDGET = Gauge("shop_memory_budget_bytes", "Resident memory above which liveness fails (0: no budget)")
MEMORY_LIMIT = Gauge(
    "shop_memory_limit_bytes",
    "The memory limit the budget is a fraction of: MEMORY_BUDGET_BYTES, else the cgroup's (0: none)",
)
RESIDENT_MEMORY = Gauge("shop_resident_memory_bytes", "Resident memory of the process, read at scrape time")
LIVE = Gauge("shop_live", "1 while liveness passes (memory under budget, no fatal error), read at scrape time")
IN_ROTATION = Gauge(
    "shop_in_rotation",
    "1 while the process takes traffic: its last readiness probe passed, not draining nor forced off",
)

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


async def exposition(request: Request) -> Response:
    """The Prometheus text, or only the series named by `name[]` (`/metrics?name[]=shop_live`): the recovery page
    reads a handful each second, and a restricted registry collects only those, at a fraction of a whole scrape's
    CPU. Async, unlike the instrumentator's own handler: no thread-pool hop per scrape."""
    names = request.query_params.getlist("name[]")
    registry = REGISTRY.restricted_registry(names) if names else REGISTRY
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: FastAPI, probes: ProbeState) -> None:
    app.add_middleware(
        HandlerMemoMiddleware,
        excluded_handlers=EXCLUDED_HANDLERS,
        should_group_status_codes=False,  # "503", not "5xx": the alerts match status=~"5.."
        instrumentations=[record],
    )
    app.add_api_route("/metrics", exposition, methods=["GET"], include_in_schema=False)
    MEMORY_BUDGET.set_function(lambda: probes.memory_budget or 0)
    MEMORY_LIMIT.set_function(lambda: probes.memory_limit or 0)
    RESIDENT_MEMORY.set_function(resident_memory_bytes)
    LIVE.set_function(lambda: 0 if probes.liveness_problem() else 1)
    IN_ROTATION.set_function(lambda: 0 if probes.out_of_rotation else 1)
