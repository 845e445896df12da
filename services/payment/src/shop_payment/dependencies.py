from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shop_payment.auth import Principal
from shop_payment.service import Payments
from shop_payment.state import PaymentState
from shopkit import UnauthorizedError, state_of

_bearer = HTTPBearer(auto_error=False)


async def _current_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None:
        raise UnauthorizedError("A bearer token is required.")
    return await state_of(request).own(PaymentState).verifier.verify(credentials.credentials)


async def _payments(request: Request) -> Payments:
    return state_of(request).own(PaymentState).payments


CurrentUser = Annotated[Principal, Depends(_current_user)]
PaymentsDep = Annotated[Payments, Depends(_payments)]
