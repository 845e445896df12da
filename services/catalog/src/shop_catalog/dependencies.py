from typing import Annotated

from fastapi import Depends, Request

import shopkit
from shop_catalog.settings import CatalogSettings
from shop_catalog.state import CatalogState
from shopkit.credentials import Callers, caller


async def _settings(request: Request) -> CatalogSettings:
    return shopkit.state_of(request).own(CatalogState).settings


def _callers(request: Request) -> Callers:
    return shopkit.state_of(request).own(CatalogState).callers


SettingsDep = Annotated[CatalogSettings, Depends(_settings)]
PaymentCaller = Annotated[str, Depends(caller(_callers, "payment"))]
"""Reservations: payment's alone."""
OperatorCaller = Annotated[str, Depends(caller(_callers, "operator", "storefront"))]
"""Inventory and restock: the operator's, directly or through the storefront's `/ops/`."""
