import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from pydantic import ValidationError

from shop_users.settings import UsersSettings

THROTTLE = (
    "USERS_LOGIN_FREE_FAILURES",
    "USERS_LOGIN_FAILURE_WINDOW_SECONDS",
    "USERS_LOGIN_LOCK_BASE_SECONDS",
    "USERS_LOGIN_LOCK_MAX_SECONDS",
)


def _pem(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENVIRONMENT", "PORT", "USERS_JWT_PRIVATE_KEY", "USERS_TOKEN_TTL_SECONDS", "CHAOS_ENABLED", *THROTTLE):
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = UsersSettings()

    assert settings.port == 8082
    assert settings.jwt_private_key is None
    assert settings.token_ttl_seconds == 3600
    assert (settings.jwt_issuer, settings.jwt_audience) == ("resilient-shop-users", "resilient-shop")
    assert settings.login_free_failures == 5
    assert settings.login_failure_window_seconds == 900
    assert (settings.login_lock_base_seconds, settings.login_lock_max_seconds) == (1.0, 60)


def test_production_without_a_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="USERS_JWT_PRIVATE_KEY is required in production"):
        UsersSettings(environment="production")


def test_production_with_a_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    pem = _pem(ed25519.Ed25519PrivateKey.generate())
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("USERS_JWT_PRIVATE_KEY", pem.replace("\n", "\\n"))
    monkeypatch.setenv("USERS_TOKEN_TTL_SECONDS", "900")
    monkeypatch.setenv("PORT", "9000")

    settings = UsersSettings()

    assert settings.is_production
    assert settings.jwt_private_key is not None
    assert settings.token_ttl_seconds == 900
    assert settings.port == 9000
    assert "PRIVATE KEY" not in repr(settings)


@pytest.mark.parametrize(
    "key",
    [
        "changeme",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        _pem(rsa.generate_private_key(65537, 2048)),
    ],
    ids=["placeholder", "garbage_pem", "rsa"],
)
def test_a_key_that_is_not_an_ed25519_pem_is_refused(key: str) -> None:
    with pytest.raises(ValidationError) as info:
        UsersSettings(jwt_private_key=key)

    assert key not in str(info.value)


def test_the_login_throttle_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in zip(THROTTLE, ("3", "600", "0.5", "30"), strict=True):
        monkeypatch.setenv(name, value)

    settings = UsersSettings()

    assert settings.login_free_failures == 3
    assert settings.login_failure_window_seconds == 600
    assert (settings.login_lock_base_seconds, settings.login_lock_max_seconds) == (0.5, 30)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"login_free_failures": 0}, "greater than or equal to 1"),
        ({"login_failure_window_seconds": 10}, "greater than or equal to 60"),
        ({"login_lock_base_seconds": 0}, "greater than or equal to 0.001"),
        ({"login_lock_max_seconds": 0}, "greater than or equal to 1"),
        ({"login_lock_base_seconds": 10, "login_lock_max_seconds": 5}, "must not exceed"),
        ({"login_lock_max_seconds": 900}, "must be shorter than"),
    ],
)
def test_a_login_throttle_out_of_range_is_refused(overrides: dict[str, float], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        UsersSettings(**overrides)  # type: ignore[arg-type]
