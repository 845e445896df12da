from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shopkit import ServiceSettings, shared
from shopkit.credentials import Credential


class CatalogSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CATALOG_", extra="ignore", populate_by_name=True, validate_default=True
    )

    port: int = Field(8081, ge=1, le=65535, validation_alias=shared("PORT"))
    reservation_ttl_seconds: int = Field(300, ge=1, le=86_400)
    sweep_interval_seconds: float = Field(5.0, gt=0, le=3600)
    cache_enabled: bool = True
    """Answer `GET /products` from a cache invalidated by PostgreSQL notifications on every change of a product."""
    cache_max_age_seconds: float = Field(5.0, ge=0, le=3600)
    """The longest a cached product list is served, even with no change notified (0 turns the cache off)."""
    products_max_age_seconds: int = Field(1, ge=0, le=300)
    """`Cache-Control: public, max-age=N` of the product list: how long caches in front of the catalog (the
    storefront, browsers) may keep it. 0 asks them not to keep it at all."""
    payment_credential: Credential = Field(None, validation_alias=shared("PAYMENT_CREDENTIAL"))
    """Payment's credential: it may hold, read, commit and release reservations."""
    storefront_credential: Credential = Field(None, validation_alias=shared("STOREFRONT_CREDENTIAL"))
    """The storefront's credential: it passes the operator's requests on (`/ops/`), so it may do what they may."""
    operator_credential: Credential = Field(None, validation_alias=shared("OPERATOR_CREDENTIAL"))
    """The operator's credential (the drill, the bench): it may read the inventory and restock. A caller with no
    credential set here is refused (401): internal endpoints fail closed."""

    def credentials(self) -> dict[str, Credential]:
        return {
            "PAYMENT_CREDENTIAL": self.payment_credential,
            "STOREFRONT_CREDENTIAL": self.storefront_credential,
            "OPERATOR_CREDENTIAL": self.operator_credential,
        }
