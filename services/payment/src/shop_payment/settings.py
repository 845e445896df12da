from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shop_contracts import JWT_AUDIENCE, JWT_ISSUER
from shopkit import ServiceSettings, shared
from shopkit.credentials import Credential


class PaymentSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="PAYMENT_", extra="ignore", populate_by_name=True, validate_default=True
    )

    port: int = Field(8083, ge=1, le=65535, validation_alias=shared("PORT"))
    catalog_url: str = "http://127.0.0.1:8081"
    users_url: str = "http://127.0.0.1:8082"
    jwt_issuer: str = JWT_ISSUER
    jwt_audience: str = JWT_AUDIENCE
    jwks_cache_seconds: float = Field(300.0, ge=0)
    provider_latency_ms: int = Field(150, ge=0, le=60_000)
    pending_lease_seconds: float = Field(5.0, gt=0, le=3600)
    sweep_interval_seconds: float = Field(1.0, gt=0, le=3600)
    pending_wait_seconds: float = Field(2.0, gt=0, le=60)
    """How long a retry waits for the request that is still finishing its payment (looking every 50 ms, holding no
    connection in between); then 503 with Retry-After, and the client retries with the same key."""
    max_in_flight: int = Field(64, ge=1, le=100_000, validation_alias=shared("MAX_IN_FLIGHT"))
    """About a second of work at the rate one core settles payments; more in flight only waits longer."""
    provider_pool_size: int = Field(4, ge=1, le=50)
    """Connections of the simulated provider's own pool (one short statement pair per charge)."""
    credential: Credential = Field(None, validation_alias=shared("PAYMENT_CREDENTIAL"))
    """Payment's own credential, presented to catalog with every reservation call (catalog refuses them without)."""

    def credentials(self) -> dict[str, Credential]:
        return {"PAYMENT_CREDENTIAL": self.credential}
