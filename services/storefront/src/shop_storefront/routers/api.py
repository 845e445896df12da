from fastapi import APIRouter, Request, Response

from shop_storefront import proxy
from shop_storefront.dependencies import SettingsDep, UpstreamsDep

router = APIRouter(prefix="/api", tags=["gateway"])


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def gateway(path: str, request: Request, settings: SettingsDep, upstreams: UpstreamsDep) -> Response:
    """The public API: catalog, users and payment behind one origin, routed by the first path segment."""
    return await proxy.forward(request, path, upstreams, attempts=settings.retry_attempts)
