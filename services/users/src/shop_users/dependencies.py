from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shop_users import service
from shop_users.exceptions import InvalidTokenError, MissingTokenError
from shop_users.models import User
from shop_users.security import Passwords, TokenKeys
from shop_users.state import UsersState
from shop_users.throttle import LoginThrottle
from shopkit import SessionDep, state_of

bearer = HTTPBearer(auto_error=False, description="An access token from `POST /tokens`.")


async def _keys(request: Request) -> TokenKeys:
    return state_of(request).own(UsersState).keys


async def _passwords(request: Request) -> Passwords:
    return state_of(request).own(UsersState).passwords


async def _login_throttle(request: Request) -> LoginThrottle:
    return state_of(request).own(UsersState).login_throttle


KeysDep = Annotated[TokenKeys, Depends(_keys)]
PasswordsDep = Annotated[Passwords, Depends(_passwords)]
LoginThrottleDep = Annotated[LoginThrottle, Depends(_login_throttle)]


async def _current_user(
    session: SessionDep,
    keys: KeysDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    if credentials is None:
        raise MissingTokenError
    claims = keys.verify(credentials.credentials)
    user = await service.get_user(session, claims.user_id)
    if user is None:
        raise InvalidTokenError
    return user


CurrentUser = Annotated[User, Depends(_current_user)]
