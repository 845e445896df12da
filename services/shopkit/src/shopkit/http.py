"""HTTP clients between services: explicit timeouts, the request id and the deadline passed on, bounded retries."""

import asyncio
import itertools
import math
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager

import aiohttp
import httpx
import structlog
import yarl

from shop_contracts import SERVICE_RETRYABLE_STATUSES
from shopkit import deadlines
from shopkit.logging import REQUEST_ID_HEADER, current_request_id
from shopkit.server import KEEP_ALIVE_SECONDS

KEEPALIVE_EXPIRY_SECONDS = 2.0
"""An idle connection to another service is dropped after this, well before the server drops it
(`shopkit.server.KEEP_ALIVE_SECONDS`): reusing a connection the server closes at that moment is reset without an
answer, which the gateway could only report as a 502 (seen once after a bench burst, on a `GET /api/payments/{id}`)."""

MAX_RETRY_AFTER_SECONDS = KEEP_ALIVE_SECONDS - 1
"""A client told to wait keeps its kept-alive connection: the server would close it after KEEP_ALIVE_SECONDS idle."""
FREED_WINDOW_SECONDS = 2.0
"""A full bulkhead's Retry-After comes from the rate its slots came free over this last while."""

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
    return response.status_code in SERVICE_RETRYABLE_STATUSES and not (
        response.status_code == 503 and "retry-after" in response.headers
    )


_SENDABLE_VALUE = re.compile(rb"[\t\x20-\x7e]*")
"""What a header value may hold to be sent byte for byte: visible ASCII, spaces and tabs (aiohttp writes headers
as UTF-8 text, so other bytes could not pass unchanged)."""

_FAILURES: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, unknown host: nothing was sent
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),  # a kept-alive connection the server closed
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),  # an answer that is not HTTP
    (aiohttp.ClientError, httpx.ReadError),  # a reset, or anything else on the wire
)
"""aiohttp's failures as the httpx exceptions the balancing, retries and the gateway's mapping decide on."""


@contextmanager
def _as_httpx(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except aiohttp.ClientError as exc:
        raise next(cls for kind, cls in _FAILURES if isinstance(exc, kind))(str(exc), request=request) from exc


class _AiohttpBody(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self.response, self.request = response, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx(self.request):
            async for chunk in self.response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        self.response.release()  # back to the pool when the body was read whole, else the connection is closed


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx's requests sent over aiohttp's connection pool: the services' clients keep httpx's API (and in tests
    its in-process transports), the wire is aiohttp's.

    Measured with 16 requests at once to a bare uvicorn app: about 1.0 ms of the caller's CPU per request through
    httpx's own pool (1.4 ms with 64 connections), 0.33 ms through this one (aiohttp alone: 0.09 ms). httpcore looks at
    every pooled connection, with a system call for each idle one, twice per request; aiohttp takes the last
    connection freed. At most `max_connections` are open, each kept `keepalive_expiry` seconds idle.
    """

    def __init__(self, *, max_connections: int, keepalive_expiry: float) -> None:
        self.max_connections, self.keepalive_expiry = max_connections, keepalive_expiry
        self._session: aiohttp.ClientSession | None = None

    def _session_now(self) -> aiohttp.ClientSession:
        """Made on first use, inside the running event loop (aiohttp's session belongs to one)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.max_connections, keepalive_timeout=self.keepalive_expiry)
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not all(_SENDABLE_VALUE.fullmatch(value) for _, value in request.headers.raw):
            raise httpx.LocalProtocolError("A header value holds bytes other than visible ASCII.")
        timeout = request.extensions.get("timeout", {})
        with _as_httpx(request):
            response = await self._session_now().request(
                request.method,
                yarl.URL(str(request.url), encoded=True),  # sent as httpx encoded it: no normalising of the path
                headers=[(name.decode("ascii"), value.decode("ascii")) for name, value in request.headers.raw],
                data=await request.aread() or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(sock_connect=timeout.get("connect"), sock_read=timeout.get("read")),
            )
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_AiohttpBody(response, request),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode("ascii")},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class BalancedTransport(httpx.AsyncBaseTransport):
    """Round robin over several replicas of one service; a replica refusing the connection is skipped, and one that
    answered `Connection: close` (what a replica out of rotation says: unready or draining, `shopkit.probes`) is
    left out of the round for `OUT_OF_ROTATION_SECONDS`, unless every replica is.

    What a Kubernetes Service gives for free, for running replicas side by side without one (`make run`, plain
    containers): `STOREFRONT_PAYMENT_URL=http://127.0.0.1:8083,http://127.0.0.1:8084`. The replica's own readiness
    decides, read from answers the checkouts get anyway: no probe and no shared state on the request's path.
    """

    OUT_OF_ROTATION_SECONDS = 2.0
    """The readiness probe's period: a replica still out of rotation says so again on the next request it gets."""

    def __init__(self, backends: Sequence[str], inner: httpx.AsyncBaseTransport) -> None:
        self.backends = [httpx.URL(backend) for backend in backends]
        self.inner = inner
        self._turn = itertools.count()
        self._out_until = [0.0] * len(self.backends)

    def _order(self) -> list[int]:
        first = next(self._turn)
        order = [(first + step) % len(self.backends) for step in range(len(self.backends))]
        now = time.monotonic()
        return sorted(order, key=lambda index: self._out_until[index] > now)  # stable: the round's order otherwise

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        order = self._order()
        for attempt, index in enumerate(order):
            backend = self.backends[index]
            request.url = request.url.copy_with(scheme=backend.scheme, host=backend.host, port=backend.port)
            request.headers["host"] = backend.netloc.decode("ascii")
            try:
                response = await self.inner.handle_async_request(request)
            except httpx.ConnectError:
                if attempt == len(order) - 1:
                    raise
                continue
            if response.headers.get("connection", "").lower() == "close":
                self._out_until[index] = time.monotonic() + self.OUT_OF_ROTATION_SECONDS
            return response
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


class BulkheadFull(httpx.PoolTimeout):
    """Every slot stayed busy for the request's pool timeout. `retry_after`: when to come back (1 to 4 s), from the
    requests still waiting and the rate slots came free lately (`BulkheadTransport.retry_after`)."""

    def __init__(self, message: str, *, request: httpx.Request, retry_after: int) -> None:
        super().__init__(message, request=request)
        self.retry_after = retry_after


class BulkheadTransport(httpx.AsyncBaseTransport):
    """At most `size` requests to one service at a time, each holding its slot until its answer is read.

    The next one waits for a slot at most the request's pool timeout (bounded by its deadline), then fails with
    `httpx.PoolTimeout`: the caller answers 503 with Retry-After instead of queueing. A bulkhead per service keeps a
    slow one (payment, in a sale) from taking every connection and every waiting request of the caller with it.
    And requests wait here, on a semaphore, not in a connection pool's queue: in httpcore's, whose queue cost CPU in
    proportion to its length on every step, 500 requests queued kept a whole core busy doing only that.

    The refusal says when to come back (`BulkheadFull.retry_after`): with every client told "1 s" in a burst four
    times the bulkhead's size, each came back to be refused again, and answering refusals took the CPU the
    checkouts needed (66 captured/s at 512 concurrent against 78 at 128); told how long the queue ahead of them
    takes to drain, they come back spread over those seconds, and 512 captures about as much as 128.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, size: int) -> None:
        self.inner = inner
        self.size = size
        self._slots = asyncio.Semaphore(size)
        self._waiting = 0
        self._freed: deque[float] = deque()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        wait = request.extensions.get("timeout", {}).get("pool")
        self._waiting += 1
        try:
            try:
                async with asyncio.timeout(wait):
                    await self._slots.acquire()
            finally:
                self._waiting -= 1
        except TimeoutError:
            message = f"all {self.size} connections stayed busy"
            raise BulkheadFull(message, request=request, retry_after=self.retry_after()) from None
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException:
            self._release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _ReleasedOnClose(response.stream, self._release)
        return response

    def _release(self) -> None:
        self._slots.release()
        self._forget_freed_before(now := time.monotonic())
        self._freed.append(now)

    def _forget_freed_before(self, now: float) -> None:
        """Keeps only the last FREED_WINDOW_SECONDS of freed slots: the deque stays as long as a window's answers,
        however long the process runs without refusing anything."""
        while self._freed and self._freed[0] < now - FREED_WINDOW_SECONDS:
            self._freed.popleft()

    def retry_after(self) -> int:
        """Half the time the requests waiting now (and this one) take to get a slot at the rate slots came free
        lately: clients told so come back while the queue ahead still has work, never to an idle bulkhead. 1 s when
        slots come free fast enough, at most MAX_RETRY_AFTER_SECONDS (also when none came free lately)."""
        self._forget_freed_before(time.monotonic())
        rate = len(self._freed) / FREED_WINDOW_SECONDS
        if rate == 0:
            return 1 if self._waiting == 0 else MAX_RETRY_AFTER_SECONDS
        return max(1, min(MAX_RETRY_AFTER_SECONDS, math.ceil((self._waiting + 1) / rate / 2)))

    async def aclose(self) -> None:
        await self.inner.aclose()


def replica_urls(base_url: str) -> list[str]:
    """The replicas a service's URL setting lists (`http://127.0.0.1:8083,http://127.0.0.1:8084`), in order."""
    return [url.strip() for url in base_url.split(",") if url.strip()]


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
    backends = replica_urls(base_url)
    inner = transport or AiohttpTransport(max_connections=max_connections, keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS)
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
