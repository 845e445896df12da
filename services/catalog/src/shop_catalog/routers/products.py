from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from shop_catalog import service
from shop_catalog.dependencies import SettingsDep
from shop_catalog.schemas import ProductPage, ProductRead
from shop_contracts import SKU_MAX_LENGTH
from shopkit import SessionDep, problems

router = APIRouter(tags=["products"])

SkuPath = Annotated[str, Path(min_length=1, max_length=SKU_MAX_LENGTH)]
"""Any SKU-sized string, not only the well-formed ones a `LineItem` takes: one that names no product is a 404."""


@router.get("/products")
async def list_products(
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    q: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> ProductPage:
    """Stock as of this read. Caches in front may keep the answer `products_max_age_seconds`; this service's own
    cache serves it until a product changes (see shop_catalog.freshness)."""
    max_age = settings.products_max_age_seconds
    response.headers["Cache-Control"] = f"public, max-age={max_age}" if max_age else "no-cache"
    products, total = await service.list_products(session, limit=limit, offset=offset, query=q)
    return ProductPage(items=[ProductRead.model_validate(p) for p in products], total=total)


@router.get("/products/{sku}", responses=problems(404))
async def get_product(session: SessionDep, sku: SkuPath) -> ProductRead:
    return ProductRead.model_validate(await service.get_product(session, sku))
