from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from shop_storefront.state import StorefrontState
from shopkit import state_of

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
async def openapi(request: Request) -> dict[str, Any]:
    """The whole public API of the shop (catalog, users and payment under `/api`), not the gateway's own routes."""
    return await state_of(request).own(StorefrontState).public_api.document()


@router.get("/docs")
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="resilient-shop API")
