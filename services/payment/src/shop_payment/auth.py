"""Bearer tokens issued by users, verified offline against its JWKS (fetched once, cached, refreshed on rotation)."""

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import structlog

from shop_payment.exceptions import DependencyUnavailable
from shopkit import UnauthorizedError

log = structlog.get_logger(__name__)

MIN_REFRESH_INTERVAL = 5.0  # an unknown `kid` refetches the JWKS, but not more often than this


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    email: str | None


class JwksVerifier:
    def __init__(self, http: httpx.AsyncClient, *, issuer: str, audience: str, cache_seconds: float) -> None:
        self.http = http
        self.issuer = issuer
        self.audience = audience
        self.cache_seconds = cache_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._refreshing = asyncio.Lock()
        """One fetch at a time: a cold process hit by a burst asks users once, not once per request."""

    async def _refresh(self) -> None:
        try:
            response = await self.http.get("/.well-known/jwks.json")
            response.raise_for_status()
            keys = jwt.PyJWKSet.from_dict(response.json()).keys
        except (httpx.HTTPError, jwt.PyJWKSetError, ValueError) as exc:
            log.warning("jwks_fetch_failed", error_type=type(exc).__name__)
            if not self._keys:
                raise DependencyUnavailable("Tokens cannot be verified: the users service is unreachable.") from exc
            # Keep the keys we have and ask again in MIN_REFRESH_INTERVAL, not on every request.
            self._fetched_at = time.monotonic() - self.cache_seconds + MIN_REFRESH_INTERVAL
            return
        self._keys = {key.key_id: key for key in keys if key.key_id}
        self._fetched_at = time.monotonic()

    def _stale(self, kid: str) -> bool:
        age = time.monotonic() - self._fetched_at
        return age > self.cache_seconds or (kid not in self._keys and age > MIN_REFRESH_INTERVAL)

    async def _key(self, kid: str) -> jwt.PyJWK:
        if self._stale(kid):
            async with self._refreshing:
                if self._stale(kid):  # not refreshed by the request this one waited for
                    await self._refresh()
        if kid not in self._keys:
            raise UnauthorizedError("The token was signed by an unknown key.")
        return self._keys[kid]

    async def verify(self, token: str) -> Principal:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as exc:
            raise UnauthorizedError("The bearer token is malformed.") from exc
        if not isinstance(kid, str):
            raise UnauthorizedError("The bearer token names no signing key.")
        key = await self._key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["sub", "exp", "iat"]},
            )
            return Principal(user_id=uuid.UUID(str(claims["sub"])), email=claims.get("email"))
        except (jwt.InvalidTokenError, ValueError) as exc:
            raise UnauthorizedError("The bearer token is invalid or expired.") from exc
