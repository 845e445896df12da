"""HTTP clients between services: explicit timeouts, the request id and the deadline passed on, bounded retries."""

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Sequence

import httpx
import structlog

from shopkit import deadlines
from shopkit.logging import REQUEST_ID_HEADER, current_request_id

RETRYABLE_STATUSES = frozenset({502, 503})
"""Answers worth another try; a 503 with `Retry-After` is not one: that service is shedding load, and a retry
would add to the load it sheds. The caller passes the answer on and the client comes back when told."""

KEEPALIVE_EXPIRY_SECONDS = 2.0
"""An idle connection to another service is dropped after this, well before the server drops it
(`shopkit.server.KEEP_ALIVE_SECONDS`): reusing a connection the server closes at that moment is reset without an
answer, which the gateway could only report as a 502 (seen once after a bench burst, on a `GET /api/payments/{id}`)."""

log = structlog.get_logger(__name__)


async def _propagate_request_id(request: httpx.Request) -> None:
    if (request_id := current_request_id()) and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = request_id


async def _propagate_deadline(request: httpx.Request) -> None:
    """Tells the upstream how long this caller will wait for it: the read timeout, or less when the current
    request has less time left, minus a margin for the answer to travel back and for busy event loops. So the
    upstream gives up (and says so with a 503) before this caller times out on it."""
    timeouts = {"connect": None, "read": None, "write": None, "pool": None, **request.extensions.get("timeout", {})}
    wait = min((t for t in (timeouts["read"], deadlines.remaining()) if t is not None), default=None)
    if wait is None:
        return
    budget = wait - max(deadlines.DOWNSTREAM_MARGIN_SECONDS, wait * deadlines.DOWNSTREAM_MARGIN_FRACTION)
    if budget <= deadlines.MIN_BUDGET_SECONDS:
        raise deadlines.DeadlineExceeded()
    request.headers[deadlines.DEADLINE_HEADER] = str(int(budget * 1000))
    request.extensions["timeout"] = {phase: wait if t is None else min(t, wait) for phase, t in timeouts.items()}


def _should_retry(response: httpx.Response) -> bool:
    return response.status_code in RETRYABLE_STATUSES and not (
        response.status_code == 503 and "retry-after" in response.headers
    )


class BalancedTransport(httpx.AsyncBaseTransport):
    """Round robin over several replicas of one service; a replica refusing the connection is skipped.

    What a Kubernetes Service gives for free, for running replicas side by side without one (`make run`, plain
    containers): `STOREFRONT_PAYMENT_URL=http://127.0.0.1:8083,http://127.0.0.1:8093`.
    """

    def __init__(self, backends: Sequence[str], inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.backends = [httpx.URL(backend) for backend in backends]
        self.inner = inner or httpx.AsyncHTTPTransport()
        self._turn = itertools.count()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        first = next(self._turn)
        for attempt in range(len(self.backends)):
            backend = self.backends[(first + attempt) % len(self.backends)]
            request.url = request.url.copy_with(scheme=backend.scheme, host=backend.host, port=backend.port)
            request.headers["host"] = backend.netloc.decode("ascii")
            try:
                return await self.inner.handle_async_request(request)
            except httpx.ConnectError:
                if attempt == len(self.backends) - 1:
                    raise
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self.inner.aclose()


class _ReleasedOnClose(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self.stream = stream
        self.release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self.stream.aclose()
        finally:
            release, self.release = self.release, None
            if release is not None:
                release()


class BulkheadTransport(httpx.AsyncBaseTransport):
    """At most `size` requests to one service at a time, each holding its slot until its answer is read.

    The next one waits for a slot at most the request's pool timeout (bounded by its deadline), then fails with
    `httpx.PoolTimeout`: the caller answers 503 with Retry-After instead of queueing. A bulkhead per service keeps a
    slow one (payment, in a sale) from taking every connection and every waiting request of the caller with it.
    And requests wait here, on a semaphore, not in httpcore's pool, whose queue costs CPU in proportion to its
    length on every step: 500 requests queued there kept a whole core busy doing only that.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, size: int) -> None:
        self.inner = inner
        self.size = size
        self._slots = asyncio.Semaphore(size)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        wait = request.extensions.get("timeout", {}).get("pool")
        try:
            async with asyncio.timeout(wait):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout(f"all {self.size} connections stayed busy", request=request) from None
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException:
            self._slots.release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _ReleasedOnClose(response.stream, self._slots.release)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def create_client(
    base_url: str,
    *,
    timeout: float,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = 64,
    pool_timeout: float = 1.0,
) -> httpx.AsyncClient:
    """A client for one service; `base_url` may list several replicas separated by commas.

    At most `max_connections` requests are in flight to the service (all of them kept alive between requests, so a
    steady load never reconnects); one more waits `pool_timeout` for a slot, then fails with `httpx.PoolTimeout`.
    """
    backends = [url.strip() for url in base_url.split(",") if url.strip()]
    inner = transport or httpx.AsyncHTTPTransport(
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
        )
    )
    if len(backends) > 1:
        inner = BalancedTransport(backends, inner)
    return httpx.AsyncClient(
        base_url=backends[0],
        timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0), pool=min(timeout, pool_timeout)),
        transport=BulkheadTransport(inner, max_connections),
        event_hooks={"request": [_propagate_request_id, _propagate_deadline]},
        headers={"user-agent": "resilient-shop"},
    )


def is_retryable(request: httpx.Request) -> bool:
    """GETs, and POSTs that carry an Idempotency-Key, can be sent again without doing the work twice."""
    return request.method in {"GET", "HEAD"} or (request.method == "POST" and "idempotency-key" in request.headers)


def _time_for(backoff_seconds: float) -> bool:
    left = deadlines.remaining()
    return left is None or left - backoff_seconds > deadlines.DOWNSTREAM_MARGIN_SECONDS


async def send_with_retries(
    client: httpx.AsyncClient, request: httpx.Request, *, attempts: int = 3, backoff_seconds: float = 0.1
) -> httpx.Response:
    """Sends `request`, retrying connection errors and 502/503 answers when the request is retryable.

    A connection reset (a pod OOM-killed, or one that closed a kept-alive connection as the request went out) is
    retried on another connection: the request is idempotent, so sending it again is safe even if the first copy
    was processed. Read timeouts are not retried: the upstream may still be doing the work, and a second request
    would only queue behind it. Neither is a full bulkhead (`httpx.PoolTimeout`): that service is busy already. No retry
    starts when the request's deadline would pass during its back-off.
    """
    tries = attempts if is_retryable(request) else 1
    for attempt in range(1, tries + 1):
        try:
            response = await client.send(request)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            if attempt == tries or not _time_for(backoff_seconds * attempt):
                raise
            log.warning("upstream_retry", url=str(request.url), attempt=attempt, reason="connection")
        else:
            if not _should_retry(response) or attempt == tries or not _time_for(backoff_seconds * attempt):
                return response
            await response.aclose()
            log.warning("upstream_retry", url=str(request.url), attempt=attempt, status=response.status_code)
        await asyncio.sleep(backoff_seconds * attempt)
    raise AssertionError("unreachable")
