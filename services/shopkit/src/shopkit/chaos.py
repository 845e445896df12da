"""Fault injection for the demo: leak memory, hang the event loop, crash, flip readiness.

Mounted only when `CHAOS_ENABLED=true`, every call needs `X-Chaos-Token`, hidden from OpenAPI; each injection is
logged and counted in `/metrics`.
"""

import asyncio
import hmac
import mmap
import os
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, status
from prometheus_client import Counter, Gauge
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from shopkit.probes import ProbeState
from shopkit.problems import ForbiddenError, UnauthorizedError

CRASH_EXIT_CODE = 70
LEAK_TICK_SECONDS = 0.1

INJECTIONS = Counter("shop_chaos_injections_total", "Faults injected through /chaos, by fault", ["fault"])
LEAKED_BYTES = Gauge("shop_chaos_leaked_bytes", "Memory held by the injected leak")
for _fault in ("leak", "hang", "crash", "unready"):  # every series exists from the start
    INJECTIONS.labels(fault=_fault)

log = structlog.get_logger(__name__)


def resident_chunk(size: int) -> mmap.mmap:
    """`size` bytes of anonymous memory, every page written so it is resident. Mapped directly, not through malloc:
    once a first leak is freed, glibc raises its mmap threshold and serves the next one from the heap, which it does
    not give back while anything allocated later lives above it, so a second leak would stay resident after
    clearing (and the process over its budget for good)."""
    chunk = mmap.mmap(-1, size)
    for offset in range(0, size, mmap.PAGESIZE):
        chunk[offset] = 0x5A
    return chunk


class LeakRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mb_per_second: float = Field(8.0, gt=0, le=1024)
    max_mb: int | None = Field(None, gt=0, le=65_536)


class HangRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(60.0, gt=0, le=600)


@dataclass
class ChaosState:
    probes: ProbeState
    leaked: list[mmap.mmap] = field(default_factory=list)
    leak_task: asyncio.Task[None] | None = None
    leak_rate_mb: float = 0.0
    leak_cap_mb: int | None = None

    @property
    def leaked_bytes(self) -> int:
        return sum(len(chunk) for chunk in self.leaked)

    def describe(self) -> dict[str, Any]:
        leaking = self.leak_task is not None and not self.leak_task.done()
        return {
            "leak": {"active": leaking, "mb_per_second": self.leak_rate_mb, "max_mb": self.leak_cap_mb},
            "leaked_bytes": self.leaked_bytes,
            "forced_unready": self.probes.forced_unready,
        }

    async def _leak(self) -> None:
        chunk = max(mmap.PAGESIZE, int(self.leak_rate_mb * 2**20 * LEAK_TICK_SECONDS))
        while self.leak_cap_mb is None or self.leaked_bytes + chunk <= self.leak_cap_mb * 2**20:
            self.leaked.append(resident_chunk(chunk))
            LEAKED_BYTES.set(self.leaked_bytes)
            await asyncio.sleep(LEAK_TICK_SECONDS)

    def start_leak(self, request: LeakRequest) -> None:
        self.stop_leak()
        self.leak_rate_mb, self.leak_cap_mb = request.mb_per_second, request.max_mb
        self.leak_task = asyncio.create_task(self._leak())

    def stop_leak(self) -> None:
        if self.leak_task is not None:
            self.leak_task.cancel()
            self.leak_task = None

    def clear(self) -> None:
        self.stop_leak()
        for chunk in self.leaked:
            chunk.close()  # unmapped: back to the system at once
        self.leaked.clear()
        self.leak_rate_mb, self.leak_cap_mb = 0.0, None
        LEAKED_BYTES.set(0)
        self.probes.forced_unready = False


def _injected(fault: str, **fields: Any) -> None:
    INJECTIONS.labels(fault=fault).inc()
    log.warning("chaos_injected", fault=fault, **fields)


def chaos_router(chaos: ChaosState, token: SecretStr) -> APIRouter:
    """`/chaos`, acting on `chaos` (the state of the process serving it), every call behind `X-Chaos-Token`."""
    expected = token.get_secret_value().encode()

    async def require_token(given: Annotated[str | None, Header(alias="X-Chaos-Token")] = None) -> None:
        if not given:
            raise UnauthorizedError("The X-Chaos-Token header is required.")
        if not hmac.compare_digest(given.encode(), expected):
            raise ForbiddenError("The chaos token is wrong.")

    router = APIRouter(prefix="/chaos", include_in_schema=False, dependencies=[Depends(require_token)])

    @router.post("/leak", status_code=status.HTTP_202_ACCEPTED)
    async def leak(body: LeakRequest | None = None) -> dict[str, Any]:
        body = body or LeakRequest()
        chaos.start_leak(body)
        _injected("leak", mb_per_second=body.mb_per_second, max_mb=body.max_mb)
        return chaos.describe()

    @router.post("/hang", status_code=status.HTTP_202_ACCEPTED)
    async def hang(body: HangRequest | None = None) -> dict[str, Any]:
        seconds = (body or HangRequest()).seconds
        _injected("hang", seconds=seconds)
        # Blocking the loop on purpose, just after this answer is written: nothing else runs, probes time out.
        asyncio.get_running_loop().call_later(0.05, time.sleep, seconds)
        return {"hanging_seconds": seconds}

    @router.post("/crash", status_code=status.HTTP_202_ACCEPTED)
    async def crash() -> dict[str, Any]:
        _injected("crash", exit_code=CRASH_EXIT_CODE)
        asyncio.get_running_loop().call_later(0.05, os._exit, CRASH_EXIT_CODE)
        return {"exiting_with": CRASH_EXIT_CODE}

    @router.post("/unready")
    async def unready() -> dict[str, Any]:
        chaos.probes.forced_unready = True
        _injected("unready")
        return chaos.describe()

    @router.post("/ready")
    async def ready() -> dict[str, Any]:
        chaos.probes.forced_unready = False
        log.info("chaos_cleared", fault="unready")
        return chaos.describe()

    @router.get("")
    async def current() -> dict[str, Any]:
        return chaos.describe()

    @router.delete("")
    async def clear() -> dict[str, Any]:
        chaos.clear()
        log.info("chaos_cleared", fault="all")
        return chaos.describe()

    return router
