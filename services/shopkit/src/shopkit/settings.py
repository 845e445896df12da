"""Settings shared by every service; each service subclasses `ServiceSettings` with its own env prefix.

Shared settings keep their plain names (`DATABASE_URL`, `CHAOS_ENABLED`, ...) so one environment can configure
every process alike; a service's own settings carry its prefix (`PAYMENT_PROVIDER_LATENCY_MS`).
"""

from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shopkit.credentials import Credential

PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "password", "dev-chaos-token"})


def shared(name: str) -> AliasChoices:
    """Environment name of a shared setting: the same in every service, never prefixed."""
    return AliasChoices(name, name.lower())


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
        hide_input_in_errors=True,  # a secret that fails validation is never printed in the error
    )

    environment: Literal["development", "production"] = Field("development", validation_alias=shared("ENVIRONMENT"))
    host: str = Field("127.0.0.1", validation_alias=shared("HOST"))
    port: int = Field(8000, ge=1, le=65535, validation_alias=shared("PORT"))
    database_url: SecretStr | None = Field(None, validation_alias=shared("DATABASE_URL"))
    db_pool_size: int = Field(10, ge=1, le=100, validation_alias=shared("DB_POOL_SIZE"))
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", validation_alias=shared("LOG_LEVEL"))
    log_format: Literal["console", "json"] | None = Field(None, validation_alias=shared("LOG_FORMAT"))
    max_body_bytes: int = Field(64 * 1024, ge=1024, validation_alias=shared("MAX_BODY_BYTES"))
    http_timeout_seconds: float = Field(5.0, gt=0, validation_alias=shared("HTTP_TIMEOUT_SECONDS"))
    request_timeout_seconds: float = Field(8.0, gt=0, le=300, validation_alias=shared("REQUEST_TIMEOUT_SECONDS"))
    """A request's deadline; a caller's `X-Request-Timeout-Ms` can only shorten it. Past it the answer is 503."""
    upstream_max_connections: int = Field(16, ge=1, le=10_000, validation_alias=shared("UPSTREAM_MAX_CONNECTIONS"))
    """Requests in flight to each other service (its bulkhead, and the most connections kept to it); one more waits up
    to 1 s for a slot, then 503. Calls to catalog take milliseconds, so 16 carry thousands a second."""
    max_in_flight: int = Field(128, ge=1, le=100_000, validation_alias=shared("MAX_IN_FLIGHT"))
    """Requests served at once; one more is answered 503 with Retry-After at once (probes are never counted)."""
    shutdown_delay_seconds: float = Field(0.0, ge=0, le=120, validation_alias=shared("SHUTDOWN_DELAY_SECONDS"))
    memory_budget_bytes: int | None = Field(None, gt=0, validation_alias=shared("MEMORY_BUDGET_BYTES"))
    memory_budget_fraction: float = Field(0.8, gt=0, le=1, validation_alias=shared("MEMORY_BUDGET_FRACTION"))
    chaos_enabled: bool = Field(False, validation_alias=shared("CHAOS_ENABLED"))
    chaos_token: SecretStr | None = Field(None, validation_alias=shared("CHAOS_TOKEN"))

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def json_logs(self) -> bool:
        return self.log_format == "json" if self.log_format else self.is_production

    def secrets_to_check(self) -> dict[str, SecretStr | None]:
        """Secrets that must not keep a placeholder value outside development; subclasses add theirs."""
        return {"CHAOS_TOKEN": self.chaos_token}

    def credentials(self) -> dict[str, Credential]:
        """The shop's own credentials this service reads (`shopkit.credentials`), by environment name."""
        return {}

    def missing_credentials(self) -> list[str]:
        """Those of `credentials` that are not set. A production server refuses to start without them
        (`shopkit.server.run_service`), where development refuses the callers instead (401); a migration, which
        calls no one, needs none."""
        return sorted(name for name, credential in self.credentials().items() if not credential)

    @model_validator(mode="after")
    def _check_secrets(self) -> Self:
        if self.chaos_enabled and not self.chaos_token:
            raise ValueError("CHAOS_ENABLED=true needs a CHAOS_TOKEN")
        if self.is_production:
            for name, secret in self.secrets_to_check().items():
                if secret is not None and secret.get_secret_value().lower() in PLACEHOLDER_SECRETS:
                    raise ValueError(f"{name} still has a placeholder value; set a real secret in production")
        return self
