"""Settings of the storefront: shared names (`PORT`, `HTTP_TIMEOUT_SECONDS`, ...) plus its own `STOREFRONT_*`."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shopkit import ServiceSettings, shared
from shopkit.credentials import Credential


class StorefrontSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="STOREFRONT_", extra="ignore", populate_by_name=True, validate_default=True
    )

    port: int = Field(8080, ge=1, le=65535, validation_alias=shared("PORT"))
    catalog_url: str = Field("http://127.0.0.1:8081", pattern=r"^https?://\S+$")
    users_url: str = Field("http://127.0.0.1:8082", pattern=r"^https?://\S+$")
    payment_url: str = Field("http://127.0.0.1:8083", pattern=r"^https?://\S+$")
    max_in_flight: int = Field(1024, ge=1, le=100_000, validation_alias=shared("MAX_IN_FLIGHT"))
    """The gateway's own work per request is small and waiting on a service costs it little: it lets the services
    behind it decide what they can take (each sheds for itself), so slow checkouts never crowd out browsing."""
    upstream_max_connections: int = Field(64, ge=1, le=10_000, validation_alias=shared("UPSTREAM_MAX_CONNECTIONS"))
    """A checkout takes payment a second or more in a sale: the gateway keeps as many in flight as payment admits."""
    retry_attempts: int = Field(3, ge=1, le=10)
    """Total tries of a retryable request (a GET, or a POST with an Idempotency-Key); 1 turns retries off."""
    cache_max_age_seconds: float = Field(5.0, ge=0, le=300)
    """The gateway keeps a `GET /api/products` answer as long as catalog's `Cache-Control: max-age` allows, and
    never longer than this; 0 turns the gateway's cache off."""
    credential: Credential = Field(None, validation_alias=shared("STOREFRONT_CREDENTIAL"))
    """The storefront's own credential, presented to catalog when it passes an operator's request on."""
    operator_credential: Credential = Field(None, validation_alias=shared("OPERATOR_CREDENTIAL"))
    """The credential `/ops/` asks of the operator; without one set, `/ops/` refuses everyone (401)."""

    recovery_run_state: Path | None = None
    """`make run`'s state file (`run.json`), which the launcher names here: where the recovery page finds every
    process, its restarts and their reasons."""
    recovery_kubernetes_api: str | None = Field(None, pattern=r"^https?://\S+$")
    """The Kubernetes API for the recovery page; in a pod it defaults to the one the kubelet names
    (`KUBERNETES_SERVICE_HOST`), and is used only when a ServiceAccount token is mounted."""

    recovery_account_dir: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount")
    """Where the pod's ServiceAccount token, namespace and CA are mounted (only with the recovery-view component)."""

    def credentials(self) -> dict[str, Credential]:
        return {"STOREFRONT_CREDENTIAL": self.credential, "OPERATOR_CREDENTIAL": self.operator_credential}
