"""Admission control: bounded in-flight work and a deadline for every request.

A service that cannot take more work says so at once (`503` problem+json with `Retry-After`) instead of queueing
requests until every one of them is late: shedding keeps the work it admitted fast, where a queue would make all of
it slow. Probes, metrics, chaos endpoints and the recovery page are never shed and never wait behind the requests,
so a busy service stays ready (busy is not unready), a sick one can still be told apart, and an operator watching a
sale still sees it.

Every admitted request runs under its deadline (`shopkit.deadlines`): when it passes before the response has
started, the work is cancelled and the client gets `503` with `Retry-After`, never a request held past its
deadline.
"""

import asyncio

from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shopkit import deadlines
from shopkit.deadlines import DeadlineExceeded
from shopkit.problems import Overloaded, error_response

UNGUARDED_PATHS = frozenset({"/healthz", "/ready", "/metrics"})
UNGUARDED_PREFIXES = ("/chaos", "/recovery", "/ops/chaos")

SHED = Counter("shop_requests_shed_total", "Requests answered 503 by admission control, by reason", ["reason"])
IN_FLIGHT = Gauge("shop_requests_in_flight", "Requests admitted and not yet answered")
for _reason in ("overloaded", "deadline"):
    SHED.labels(reason=_reason)


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, *, max_in_flight: int, timeout_seconds: float) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.timeout_seconds = timeout_seconds
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in UNGUARDED_PATHS or path.startswith(UNGUARDED_PREFIXES):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            SHED.labels(reason="overloaded").inc()
            error = Overloaded(f"{self.max_in_flight} requests are in flight; retry shortly.")
            await error_response(error)(scope, receive, send)
            return
        asked = deadlines.parse_budget(dict(scope["headers"]).get(deadlines.DEADLINE_HEADER.encode()))
        budget = min(asked or self.timeout_seconds, self.timeout_seconds)
        token = deadlines.start(budget)
        self.in_flight += 1
        IN_FLIGHT.inc()
        started = False
        timer = asyncio.timeout(budget)

        async def send_started(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                timer.reschedule(None)  # the answer is on its way: let it finish
            await send(message)

        try:
            async with timer:
                await self.app(scope, receive, send_started)
        except TimeoutError:
            if started or not timer.expired():
                raise
            SHED.labels(reason="deadline").inc()
            await error_response(DeadlineExceeded())(scope, receive, send)
        finally:
            self.in_flight -= 1
            IN_FLIGHT.dec()
            deadlines.reset(token)
