from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shop_payment.auth import JwksVerifier, Principal
from shop_payment.service import Payments
from shopkit import UnauthorizedError

_bearer = HTTPBearer(auto_error=False)


async def _current_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None:
        raise UnauthorizedError("A bearer token is required.")
    verifier: JwksVerifier = request.app.state.verifier
    return await verifier.verify(credentials.credentials)


async def _payments(request: Request) -> Payments:
    payments: Payments = request.app.state.payments
    return payments


CurrentUser = Annotated[Principal, Depends(_current_user)]
PaymentsDep = Annotated[Payments, Depends(_payments)]
