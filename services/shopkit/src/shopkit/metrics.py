"""`/metrics`: HTTP metrics from prometheus-fastapi-instrumentator plus the process's memory budget.

Only the HTTP series the dashboard, the alerts and the bench read are recorded (the instrumentator's defaults add
request and response sizes and a second, coarse latency histogram per handler, all paid for on every request).
"""

from fastapi import FastAPI
from prometheus_client import Counter, Gauge, Histogram
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator.metrics import Info

from shopkit.probes import ProbeState, cgroup_memory_limit, resident_memory_bytes

MEMORY_BUDGET = Gauge("shop_memory_budget_bytes", "Resident memory above which liveness fails (0: no budget)")
MEMORY_LIMIT = Gauge("shop_memory_limit_bytes", "The container's cgroup memory limit (0: none)")
RESIDENT_MEMORY = Gauge("shop_resident_memory_bytes", "Resident memory of the process, read at scrape time")

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


def install_metrics(app: FastAPI, probes: ProbeState) -> None:
    Instrumentator(
        excluded_handlers=["/metrics", "/healthz", "/ready"],
        should_group_status_codes=False,
    ).add(record).instrument(app).expose(app, include_in_schema=False)
    MEMORY_BUDGET.set_function(lambda: probes.memory_budget or 0)
    MEMORY_LIMIT.set_function(lambda: cgroup_memory_limit() or 0)
    RESIDENT_MEMORY.set_function(resident_memory_bytes)
