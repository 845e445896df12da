"""`/metrics`: HTTP metrics from prometheus-fastapi-instrumentator plus the process's memory budget."""

from fastapi import FastAPI
from prometheus_client import Gauge
from prometheus_fastapi_instrumentator import Instrumentator

from shopkit.probes import ProbeState, cgroup_memory_limit, resident_memory_bytes

MEMORY_BUDGET = Gauge("shop_memory_budget_bytes", "Resident memory above which liveness fails (0: no budget)")
MEMORY_LIMIT = Gauge("shop_memory_limit_bytes", "The container's cgroup memory limit (0: none)")
RESIDENT_MEMORY = Gauge("shop_resident_memory_bytes", "Resident memory of the process, read at scrape time")


def install_metrics(app: FastAPI, probes: ProbeState) -> None:
    Instrumentator(
        excluded_handlers=["/metrics", "/healthz", "/ready"],
        should_group_status_codes=False,
    ).instrument(app).expose(app, include_in_schema=False)
    MEMORY_BUDGET.set_function(lambda: probes.memory_budget or 0)
    MEMORY_LIMIT.set_function(lambda: cgroup_memory_limit() or 0)
    RESIDENT_MEMORY.set_function(resident_memory_bytes)
