from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shopkit import ServiceSettings, shared


class CatalogSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CATALOG_", extra="ignore", populate_by_name=True, validate_default=True
    )

    port: int = Field(8081, ge=1, le=65535, validation_alias=shared("PORT"))
    reservation_ttl_seconds: int = Field(300, ge=1, le=86_400)
    sweep_interval_seconds: float = Field(5.0, gt=0, le=3600)
