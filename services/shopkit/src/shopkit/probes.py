"""Liveness (`/healthz`) and readiness (`/ready`) as Kubernetes reads them.

Liveness asks only "is this process still sound?" (no I/O to other systems): it fails when the resident memory is
over budget or after a fatal internal error, and times out when the event loop is blocked. Readiness also asks
"should this pod get traffic now?": database reachable, migrations applied, not draining, not over budget, not
forced off.

An unready pod leaves the Service's endpoints, but kube-proxy steers only new connections: a client's kept-alive
connection goes on reaching the pod. So while the last readiness probe failed (or the process drains, or is forced
off), every answer carries `Connection: close` (`CloseWhenUnreadyMiddleware`): the client's next request opens a
new connection, which reaches a ready pod.
"""

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ReadinessCheck = Callable[[], Awaitable[str | None]]
"""Returns why the service is not ready, or None when this part is fine."""

CGROUP_V2_LIMIT = Path("/sys/fs/cgroup/memory.max")
CGROUP_V1_LIMIT = Path("/sys/fs/cgroup/memory/memory.limit_in_bytes")
UNLIMITED_V1 = 1 << 60  # cgroup v1 reports "no limit" as a number close to 2**63
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def resident_memory_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * _PAGE_SIZE


def cgroup_memory_limit(v2: Path = CGROUP_V2_LIMIT, v1: Path = CGROUP_V1_LIMIT) -> int | None:
    """The container's memory limit in bytes, from cgroup v2 or v1; None when there is none."""
    for path in (v2, v1):
        try:
            raw = path.read_text(encoding="ascii").strip()
        except OSError:
            continue
        if raw == "max":
            return None
        limit = int(raw)
        return None if limit >= UNLIMITED_V1 else limit
    return None


def memory_budget(explicit_bytes: int | None, fraction: float, cgroup_limit: int | None) -> int | None:
    """`fraction` of MEMORY_BUDGET_BYTES when set, else of the cgroup limit; None means no budget."""
    base = explicit_bytes if explicit_bytes is not None else cgroup_limit
    return int(base * fraction) if base is not None else None


@dataclass
class ProbeState:
    memory_budget: int | None = None
    memory_limit: int | None = None
    """What the budget is a fraction of: `MEMORY_BUDGET_BYTES` (make run gives each process its pod's limit) or the
    container's cgroup limit, where the kernel's OOM killer acts."""
    draining: bool = False
    forced_unready: bool = False
    fatal_reason: str | None = None
    readiness_checks: list[ReadinessCheck] = field(default_factory=list)
    last_probe_ready: bool = True
    """The verdict of the last `/ready`: what the kubelet saw, so whether the pod is in the Service's endpoints."""

    @property
    def out_of_rotation(self) -> bool:
        """Whether traffic should leave this process: its last readiness probe failed, it drains, or is forced off."""
        return self.draining or self.forced_unready or not self.last_probe_ready

    def memory_problem(self) -> str | None:
        if self.memory_budget is None:
            return None
        rss = resident_memory_bytes()
        if rss > self.memory_budget:
            return f"resident memory {rss // 2**20} MiB is over the budget of {self.memory_budget // 2**20} MiB"
        return None

    def liveness_problem(self) -> str | None:
        return self.fatal_reason or self.memory_problem()

    async def readiness_problem(self) -> str | None:
        if self.draining:
            return "draining: shutting down"
        if self.forced_unready:
            return "forced unready"
        if problem := self.liveness_problem():
            return problem
        results = await asyncio.gather(*(check() for check in self.readiness_checks))
        return next((reason for reason in results if reason), None)


def probes_router(probes: ProbeState) -> APIRouter:
    """`/healthz` and `/ready`, answered from `probes`: the state of the process serving them."""
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> JSONResponse:
        if problem := probes.liveness_problem():
            return JSONResponse({"status": "unhealthy", "reason": problem}, status_code=503)
        return JSONResponse({"status": "ok"})

    @router.get("/ready")
    async def ready() -> JSONResponse:
        problem = await probes.readiness_problem()
        probes.last_probe_ready = problem is None
        if problem:
            return JSONResponse({"status": "unready", "reason": problem}, status_code=503)
        return JSONResponse({"status": "ready"})

    return router


class CloseWhenUnreadyMiddleware:
    """Answers with `Connection: close` while the process is out of rotation (see the module's docstring)."""

    def __init__(self, app: ASGIApp, probes: ProbeState) -> None:
        self.app = app
        self.probes = probes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and self.probes.out_of_rotation:
                headers = [(n, v) for n, v in message.get("headers", []) if n.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)
