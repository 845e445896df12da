"""Who is calling: the shop's own callers (a service, the operator) prove it with a credential of their own.

A credential is a random secret per caller (`PAYMENT_CREDENTIAL`, `STOREFRONT_CREDENTIAL`, `OPERATOR_CREDENTIAL`),
sent as `Authorization: Bearer <credential>` and compared in constant time with every one a service accepts. Its
setting may list two values separated by a comma: the first is the one the caller presents, every one is accepted,
so a credential is rotated in three rollouts without a refused call (`old,new`, then `new,old`, then `new`).

A customer's token never matches: it is a credential of the customers, not of the shop.
"""

import hashlib
import hmac
from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator, Field, SecretStr
from pydantic_settings import NoDecode

from shopkit.problems import ForbiddenError, UnauthorizedError

MIN_LENGTH = 16
"""Shorter values are refused: a credential is a random secret, not a password someone chose."""


def _split(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip()) or None
    return value


_Values = Annotated[tuple[Annotated[SecretStr, Field(min_length=MIN_LENGTH)], ...], Field(min_length=1, max_length=2)]

Credential = Annotated[_Values | None, NoDecode, BeforeValidator(_split)]
"""A caller's credential as a setting: one value, or two during a rotation (`presented, also accepted`); None (an
empty or unset variable) when the service has none."""


def presented(credential: Credential) -> dict[str, str]:
    """The header a caller sends with `credential` (the first of its values); none when it has no credential."""
    if not credential:
        return {}
    return {"Authorization": f"Bearer {credential[0].get_secret_value()}"}


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


class Callers:
    """The callers a service knows, by name, and the credential values it accepts from each."""

    def __init__(self, credentials: Mapping[str, Credential]) -> None:
        self._digests = [
            (name, _digest(value.get_secret_value())) for name, values in credentials.items() for value in values or ()
        ]

    def identify(self, offered: str) -> str | None:
        """The caller whose credential `offered` is, compared with every accepted value (no early exit)."""
        offered_digest = _digest(offered)
        caller = None
        for name, digest in self._digests:
            if hmac.compare_digest(offered_digest, digest):
                caller = name
        return caller


BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="ShopCredential",
    description="A credential of the shop's own (a service's or the operator's); a customer's token is not one.",
)


def caller(callers: Callable[[Request], Callers], *allowed: str) -> Callable[..., Coroutine[Any, Any, str]]:
    """A dependency that answers 401 to a request without a credential the service knows, 403 to a known caller
    not in `allowed`, and otherwise gives the caller's name. `callers` finds the service's `Callers`."""

    async def dependency(
        request: Request, authorization: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
    ) -> str:
        name = callers(request).identify(authorization.credentials) if authorization else None
        if name is None:
            raise UnauthorizedError("This endpoint answers only the shop's own services and its operator.")
        if name not in allowed:
            raise ForbiddenError(f"The {name} credential does not allow this operation.")
        return name

    return dependency
