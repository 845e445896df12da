"""The gateway's logic: which service answers an `/api` path, and forwarding a request there with bounded retries.

Only the public API is routed. Probes, metrics and chaos endpoints of the services behind are never reachable
through the storefront, and dot segments are refused so no path can climb out of its prefix.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, quote_from_bytes

import httpx
import structlog
from fastapi import Request, Response

from shop_storefront.exceptions import (
    ApiRouteNotFound,
    UnforwardableHeader,
    UpstreamBusy,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from shop_storefront.metrics import GATEWAY_REQUESTS, GATEWAY_RETRIES
from shopkit import ShopError, send_with_retries
from shopkit.http import BulkheadFull

ROUTES: Mapping[str, str] = {
    "products": "catalog",
    "users": "users",
    "tokens": "users",
    ".well-known": "users",
    "payments": "payment",
}
"""First path segment under /api → the upstream that serves it: the public API, and nothing else. Internal
endpoints (catalog's reservations, inventory and restock; every probe, metric and chaos endpoint) are never
reachable here; the operator's are served under `/ops/` with the storefront's own identity."""

FORWARDED_REQUEST_HEADERS = ("accept", "authorization", "cache-control", "content-type", "idempotency-key")
"""X-Request-ID is passed on too, by the shopkit client: the request id bound to this request's logs."""
_FORWARDED_RAW = frozenset(name.encode("ascii") for name in FORWARDED_REQUEST_HEADERS)
FORWARDED_RESPONSE_HEADERS = ("cache-control", "content-type", "idempotent-replayed", "retry-after", "www-authenticate")

_SEGMENT_SAFE = "!$&'()*+,;=:@"
_QUERY_SAFE = _SEGMENT_SAFE + "/?%"
_ATTEMPTS = "shop_storefront.attempts"

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Target:
    upstream: str
    path: str
    """The path on the upstream, percent-encoded."""


def resolve(path: str) -> Target | None:
    """The upstream and its path for `path` (decoded, without the `/api/` prefix); None when it is not routed."""
    segments = [segment for segment in path.split("/") if segment]
    if not segments or any(segment in {".", ".."} for segment in segments):
        return None
    upstream = ROUTES.get(segments[0])
    if upstream is None:
        return None
    return Target(upstream, "/" + "/".join(quote(segment, safe=_SEGMENT_SAFE) for segment in segments))


async def _count_attempt(request: httpx.Request) -> None:
    request.extensions[_ATTEMPTS] = request.extensions.get(_ATTEMPTS, 0) + 1


def instrument(clients: Mapping[str, httpx.AsyncClient]) -> None:
    """Makes every send through these clients count itself on the request, so retries can be measured."""
    for upstream, client in clients.items():
        GATEWAY_RETRIES.labels(upstream=upstream)  # a series at 0 from the start, not only after a first retry
        hooks = client.event_hooks
        client.event_hooks = {"request": [*hooks["request"], _count_attempt], "response": hooks["response"]}


def _outcome(status: int) -> str:
    if status < 400:
        return "success"
    return "client_error" if status < 500 else "server_error"


def _failure(upstream: str, exc: httpx.RequestError) -> tuple[str, ShopError]:
    """The outcome and the problem for a request that got no answer. It names the service, never its address."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return "unavailable", UpstreamUnavailable(f"The {upstream} service cannot be reached; try again shortly.")
    if isinstance(exc, BulkheadFull):
        return "busy", UpstreamBusy(f"The {upstream} service is busy; retry shortly.", retry_after=exc.retry_after)
    if isinstance(exc, httpx.PoolTimeout):
        return "busy", UpstreamBusy(f"The {upstream} service is busy; retry shortly.")
    if isinstance(exc, httpx.TimeoutException):
        return "timeout", UpstreamTimeout(f"The {upstream} service did not answer in time.")
    return "unavailable", UpstreamUnavailable(f"The {upstream} service failed to answer; try again shortly.")


def _record(upstream: str, outcome: str, request: httpx.Request) -> None:
    GATEWAY_REQUESTS.labels(upstream=upstream, outcome=outcome).inc()
    if (retries := request.extensions.get(_ATTEMPTS, 1) - 1) > 0:
        GATEWAY_RETRIES.labels(upstream=upstream).inc(retries)


async def forward(request: Request, path: str, clients: Mapping[str, httpx.AsyncClient], *, attempts: int) -> Response:
    target = resolve(path)
    if target is None:
        raise ApiRouteNotFound("There is no API at this path.")
    return await relay(request, target, clients[target.upstream], attempts=attempts)


async def relay(
    request: Request,
    target: Target,
    client: httpx.AsyncClient,
    *,
    attempts: int,
    identity: Mapping[str, str] | None = None,
) -> Response:
    """Sends `request` to `target` and answers with what came back. `identity` (the storefront's own credential
    header) replaces the caller's `Authorization`: the operator's credential never travels past the gateway."""
    body = await request.body()  # bounded by the app's max_body_size: a larger body is answered 413
    query = quote_from_bytes(request.scope.get("query_string", b""), safe=_QUERY_SAFE).encode("ascii")
    outgoing = client.build_request(
        request.method,
        httpx.URL(path=target.path, query=query) if query else httpx.URL(path=target.path),
        content=body,
        # Bytes, as received (a value need not be ASCII: then it is the upstream's to refuse, with a 4xx), without
        # the whitespace around a value, which is not part of it (RFC 9110) and which httpx refuses to send.
        headers=[
            (name, value.strip(b" \t"))
            for name, value in request.headers.raw
            if name in _FORWARDED_RAW and not (identity is not None and name == b"authorization")
        ]
        + [(name.encode("ascii"), value.encode("ascii")) for name, value in (identity or {}).items()],
    )
    try:
        response = await send_with_retries(client, outgoing, attempts=attempts)
    except httpx.LocalProtocolError as exc:  # refused by this side's HTTP library: the request is at fault
        raise UnforwardableHeader("A request header has a value that cannot be passed on.") from exc
    except httpx.RequestError as exc:
        outcome, failure = _failure(target.upstream, exc)
        _record(target.upstream, outcome, outgoing)
        # A full bulkhead is load being shed, counted by `shop_gateway_requests_total{outcome="busy"}`: a line per
        # refusal would cost, in a sale, the CPU the admitted checkouts need (7 % of storefront's at 512 at once).
        (log.debug if outcome == "busy" else log.warning)(
            "upstream_failed", upstream=target.upstream, outcome=outcome, error_type=type(exc).__name__
        )
        raise failure from None
    _record(target.upstream, _outcome(response.status_code), outgoing)
    headers = {name: value for name in FORWARDED_RESPONSE_HEADERS if (value := response.headers.get(name))}
    return Response(response.content, status_code=response.status_code, headers=headers)
