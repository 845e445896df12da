"""The users service: accounts, password login, EdDSA tokens and their JWKS (`shop-users serve|migrate`)."""

import contextlib
from collections.abc import AsyncIterator, Mapping

import httpx
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

import shopkit
from shop_users.routers import jwks, tokens, users
from shop_users.security import Passwords, TokenKeys, load_private_key
from shop_users.settings import UsersSettings
from shop_users.state import UsersState
from shop_users.throttle import LoginThrottle

MIGRATIONS = "shop_users:migrations"

log = structlog.get_logger(__name__)


def load_keys(settings: UsersSettings) -> TokenKeys:
    if settings.jwt_private_key is None:
        log.warning(
            "jwt_key_ephemeral",
            detail="USERS_JWT_PRIVATE_KEY is not set: tokens die with this process and no other replica accepts them",
        )
        private_key = Ed25519PrivateKey.generate()
    else:
        private_key = load_private_key(settings.jwt_private_key.get_secret_value())
    return TokenKeys(
        private_key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.token_ttl_seconds,
    )


def login_throttle(settings: UsersSettings) -> LoginThrottle:
    return LoginThrottle(
        free_failures=settings.login_free_failures,
        window_seconds=settings.login_failure_window_seconds,
        lock_base_seconds=settings.login_lock_base_seconds,
        lock_max_seconds=settings.login_lock_max_seconds,
    )


def create_app(
    settings: UsersSettings | None = None, *, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> FastAPI:
    settings = settings or UsersSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        keys = load_keys(settings)
        shopkit.state_of(app).own_state = UsersState(keys, Passwords(), login_throttle(settings))
        log.info("jwt_key_loaded", kid=keys.jwk["kid"])
        yield

    return shopkit.create_app(
        settings,
        title="users",
        routers=[users.router, tokens.router, jwks.router],
        lifespan=lifespan,
        migrations=MIGRATIONS,
        transports=transports,
    )


def serve() -> None:
    shopkit.run_service("shop-users", UsersSettings, create_app, migrations=MIGRATIONS)
