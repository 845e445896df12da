"""The storefront's own state, made by its lifespan and kept in its `shopkit.ServiceState`."""

from dataclasses import dataclass

from shop_storefront.openapi import PublicApi
from shop_storefront.recovery.watch import Watch
from shop_storefront.settings import StorefrontSettings
from shopkit.credentials import Callers


@dataclass(frozen=True)
class StorefrontState:
    settings: StorefrontSettings
    public_api: PublicApi
    callers: Callers
    """Who may use `/ops/` and the recovery page: the operator."""
    recovery: Watch
    """What the recovery page shows, looked at when it asks."""
