"""HTTP clients between services: explicit timeouts, the request id passed on, bounded retries."""

import asyncio

import httpx
import structlog

from shopkit.logging import REQUEST_ID_HEADER, current_request_id

RETRYABLE_STATUSES = frozenset({502, 503})

log = structlog.get_logger(__name__)


async def _propagate_request_id(request: httpx.Request) -> None:
    if (request_id := current_request_id()) and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = request_id


def create_client(
    base_url: str, *, timeout: float, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        transport=transport,
        event_hooks={"request": [_propagate_request_id]},
        headers={"user-agent": "resilient-shop"},
    )


def is_retryable(request: httpx.Request) -> bool:
    """GETs, and POSTs that carry an Idempotency-Key, can be sent again without doing the work twice."""
    return request.method in {"GET", "HEAD"} or (request.method == "POST" and "idempotency-key" in request.headers)


async def send_with_retries(
    client: httpx.AsyncClient, request: httpx.Request, *, attempts: int = 3, backoff_seconds: float = 0.1
) -> httpx.Response:
    """Sends `request`, retrying connection errors and 502/503 answers when the request is retryable.

    Read timeouts are not retried: the upstream may still be doing the work, and a second request would only
    queue behind it.
    """
    tries = attempts if is_retryable(request) else 1
    for attempt in range(1, tries + 1):
        try:
            response = await client.send(request)
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ConnectTimeout, httpx.PoolTimeout):
            if attempt == tries:
                raise
            log.warning("upstream_retry", url=str(request.url), attempt=attempt, reason="connection")
        else:
            if response.status_code not in RETRYABLE_STATUSES or attempt == tries:
                return response
            await response.aclose()
            log.warning("upstream_retry", url=str(request.url), attempt=attempt, status=response.status_code)
        await asyncio.sleep(backoff_seconds * attempt)
    raise AssertionError("unreachable")
