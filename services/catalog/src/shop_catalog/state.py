"""The catalog's own state, kept in its `shopkit.ServiceState` (`shopkit.state_of(app).own(CatalogState)`)."""

from dataclasses import dataclass

from shop_catalog.freshness import Listener
from shop_catalog.settings import CatalogSettings
from shopkit import ResponseCache


@dataclass(eq=False)
class CatalogState:
    settings: CatalogSettings
    product_cache: ResponseCache
    product_listener: Listener | None = None
    """Started by the lifespan when the product list is cached."""
