"""Settings of the users service: shared names (`PORT`, `DATABASE_URL`, ...) plus its own `USERS_*` ones."""

from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from shop_contracts import JWT_AUDIENCE, JWT_ISSUER
from shop_users.security import load_private_key
from shopkit import ServiceSettings, shared


class UsersSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="USERS_",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
        hide_input_in_errors=True,  # the key is a secret: never print it in a validation error
    )

    port: int = Field(8082, ge=1, le=65535, validation_alias=shared("PORT"))
    jwt_private_key: SecretStr | None = None
    """PEM of the Ed25519 key tokens are signed with (`USERS_JWT_PRIVATE_KEY`); `\\n` escapes are accepted.
    Unset in development means an ephemeral key per process; production refuses to start without one."""
    token_ttl_seconds: int = Field(3600, ge=60, le=7 * 86_400)
    jwt_issuer: str = Field(JWT_ISSUER, min_length=1)
    jwt_audience: str = Field(JWT_AUDIENCE, min_length=1)
    login_free_failures: int = Field(5, ge=1, le=100)
    """Failed logins for one email answered at full speed before the first lock (`USERS_LOGIN_FREE_FAILURES`)."""
    login_failure_window_seconds: int = Field(900, ge=60, le=86_400)
    """An email's failures are forgotten once none came for this long, and its row is deleted."""
    login_lock_base_seconds: float = Field(1.0, ge=0.001, le=60)
    """The lock after the last free failure; it doubles with each further failure."""
    login_lock_max_seconds: int = Field(60, ge=1, le=3600)
    """The longest lock, and so the longest `Retry-After` of a throttled login."""

    def secrets_to_check(self) -> dict[str, SecretStr | None]:
        return {**super().secrets_to_check(), "USERS_JWT_PRIVATE_KEY": self.jwt_private_key}

    @field_validator("jwt_private_key")
    @classmethod
    def _parse_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            load_private_key(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _check_login_throttle(self) -> Self:
        if self.login_lock_base_seconds > self.login_lock_max_seconds:
            raise ValueError("USERS_LOGIN_LOCK_BASE_SECONDS must not exceed USERS_LOGIN_LOCK_MAX_SECONDS")
        if self.login_lock_max_seconds >= self.login_failure_window_seconds:
            raise ValueError("USERS_LOGIN_LOCK_MAX_SECONDS must be shorter than USERS_LOGIN_FAILURE_WINDOW_SECONDS")
        return self

    @model_validator(mode="after")
    def _require_key_in_production(self) -> Self:
        if self.is_production and self.jwt_private_key is None:
            raise ValueError("USERS_JWT_PRIVATE_KEY is required in production")
        return self
