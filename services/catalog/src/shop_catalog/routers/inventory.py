"""The operator's view of the stock, and restocking: internal, never routed by the gateway's `/api`."""

from fastapi import APIRouter

from shop_catalog import service
from shop_catalog.dependencies import OperatorCaller
from shop_catalog.schemas import InventoryRead, RestockRead, RestockRequest
from shopkit import SessionDep, problems

router = APIRouter(tags=["inventory"], responses=problems(401, 403))


@router.get("/inventory")
async def inventory(session: SessionDep, _caller: OperatorCaller) -> list[InventoryRead]:
    """Stock, held and sold units per product: what the drill checks its stock invariant against."""
    return await service.inventory(session)


@router.post("/restock", responses=problems(422))
async def restock(body: RestockRequest, session: SessionDep, caller: OperatorCaller) -> RestockRead:
    """Raises stock to at least `at_least` in one transaction (a sale that must not sell out); logged with who
    asked. Stock never goes down here: what is held or sold stays so."""
    raised = await service.restock(session, at_least=body.at_least, skus=body.skus, caller=caller)
    return RestockRead(raised=raised, inventory=await service.inventory(session))
