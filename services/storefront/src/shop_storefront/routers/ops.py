"""The operator's door: what the drill, the bench and the container proof need from inside the shop, reachable where
only the storefront is (kind, minikube, compose). Not under `/api` and not in the public API reference.

Each route asks for the operator's credential, then passes the request to catalog with the storefront's own
credential: the operator's never travels past the gateway, and catalog knows who passed it on.
"""

from fastapi import APIRouter, Request, Response

from shop_storefront import proxy
from shop_storefront.dependencies import OperatorCaller, SettingsDep, UpstreamsDep
from shopkit.credentials import presented

router = APIRouter(prefix="/ops", include_in_schema=False)


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
