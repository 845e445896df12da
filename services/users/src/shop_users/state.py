"""The users service's own state, made by its lifespan and kept in its `shopkit.ServiceState`."""

from dataclasses import dataclass

from shop_users.security import Passwords, TokenKeys


@dataclass(frozen=True)
class UsersState:
    keys: TokenKeys
    passwords: Passwords
