"""The catalog's own state, kept in its `shopkit.ServiceState` (`shopkit.state_of(app).own(CatalogState)`)."""

from dataclasses import dataclass, field

from shop_catalog.freshness import Listener
from shop_catalog.settings import CatalogSettings
from shopkit import ResponseCache
from shopkit.credentials import Callers


@dataclass(eq=False)
class CatalogState:
    settings: CatalogSettings
    product_cache: ResponseCache
    product_listener: Listener | None = None
    """Started by the lifespan when the product list is cached."""
    callers: Callers = field(init=False)
    """Who may call the internal endpoints, from the credentials in the settings."""

    def __post_init__(self) -> None:
        self.callers = Callers(
            {
                "payment": self.settings.payment_credential,
                "storefront": self.settings.storefront_credential,
                "operator": self.settings.operator_credential,
            }
        )
