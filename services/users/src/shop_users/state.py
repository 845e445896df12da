"""The users service's own state, made by its lifespan and kept in its `shopkit.ServiceState`."""

from dataclasses import dataclass

from shop_users.security import Passwords, TokenKeys
from shop_users.throttle import LoginThrottle


@dataclass(frozen=True)
class UsersState:
    keys: TokenKeys
    passwords: Passwords
    login_throttle: LoginThrottle
