"""The operator's door: what the drill, the bench and the container proof need from inside the shop, reachable where
only the storefront is (kind, minikube, compose). Not under `/api` and not in the public API reference.

Each route asks for the operator's credential, then passes the request to catalog with the storefront's own
credential: the operator's never travels past the gateway, and catalog knows who passed it on. `/ops/chaos` also
takes the recovery page's session, and goes to one replica with the chaos token.
"""

from typing import Annotated, Literal

import aiohttp
import structlog
from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.security import HTTPAuthorizationCredentials

from shop_storefront import proxy
from shop_storefront.dependencies import OperatorCaller, SettingsDep, UpstreamsDep, operator_caller, watch_of
from shop_storefront.exceptions import UpstreamUnavailable
from shop_storefront.routers.recovery import has_session
from shopkit.credentials import BEARER, presented
from shopkit.problems import ConflictError, NotFoundError

router = APIRouter(prefix="/ops", include_in_schema=False)
log = structlog.get_logger(__name__)

CHAOS_CALLS = {
    "leak": ("POST", "/chaos/leak"),
    "hang": ("POST", "/chaos/hang"),
    "crash": ("POST", "/chaos/crash"),
    "unready": ("POST", "/chaos/unready"),
    "ready": ("POST", "/chaos/ready"),
    "clear": ("DELETE", "/chaos"),
}
"""What `/ops/chaos/{replica}/{action}` asks of the replica: a fault, or taking one back."""
FAULTS = frozenset({"leak", "hang", "crash", "unready"})
CHAOS_TIMEOUT = aiohttp.ClientTimeout(total=5.0)


async def _to_catalog(request: Request, path: str, settings: SettingsDep, upstreams: UpstreamsDep) -> Response:
    target = proxy.Target("catalog", path)
    identity = presented(settings.credential)
    return await proxy.relay(request, target, upstreams["catalog"], attempts=settings.retry_attempts, identity=identity)


@router.get("/inventory")
async def inventory(request: Request, _: OperatorCaller, settings: SettingsDep, upstreams: UpstreamsDep) -> Response:
    """Catalog's `GET /inventory`: stock, held and sold per product."""
    return await _to_catalog(request, "/inventory", settings, upstreams)


@router.post("/restock")
async def restock(request: Request, _: OperatorCaller, settings: SettingsDep, upstreams: UpstreamsDep) -> Response:
    """Catalog's `POST /restock`: raise stock to at least N, in one transaction."""
    return await _to_catalog(request, "/restock", settings, upstreams)


async def _operator_or_session(
    request: Request,
    settings: SettingsDep,
    authorization: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> str:
    """The operator by the recovery page's session cookie, else by its credential (the drill, a script), checked as
    every `/ops/` route checks it."""
    if has_session(request, settings):
        return "recovery page"
    return await operator_caller(request, authorization)


@router.post("/chaos/{replica}/{action}")
async def chaos(
    request: Request,
    replica: Annotated[str, Path(max_length=253)],
    action: Literal["leak", "hang", "crash", "unready", "ready", "clear"],
    who: Annotated[str, Depends(_operator_or_session)],
    settings: SettingsDep,
) -> Response:
    """Injects a fault into one replica (or takes it back) with the chaos token, which never leaves the shop:
    the replica is one the recovery page lists, never an address the caller names."""
    if settings.chaos_token is None:
        raise ConflictError("The storefront has no CHAOS_TOKEN, so it cannot inject faults.")
    watch = watch_of(request)
    listing = await watch.source.listing()
    target = next((listed for listed in listing.replicas if listed.name == replica and listed.url), None)
    if target is None:
        raise NotFoundError("No replica of that name is running.")
    method, path = CHAOS_CALLS[action]
    body = await request.body()
    headers = {"X-Chaos-Token": settings.chaos_token.get_secret_value(), "Content-Type": "application/json"}
    try:
        async with watch.session.request(
            method, f"{target.url}{path}", data=body or None, headers=headers, timeout=CHAOS_TIMEOUT
        ) as answer:
            status, text, json_body = answer.status, await answer.text(), answer.content_type.endswith("json")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise UpstreamUnavailable(f"{replica} did not answer ({type(exc).__name__}).") from None
    if status == 404:
        raise ConflictError(f"{replica} has no chaos endpoints: start the shop with CHAOS_ENABLED=true.")
    log.info("chaos_requested", replica=replica, action=action, by=who, status=status)
    if 200 <= status < 300:
        watch.note(replica, "fault injected" if action in FAULTS else "fault cleared", action)
    return Response(text if json_body else "{}", status_code=status, media_type="application/json")
