"""Domain errors of the users service; shopkit renders them as problem+json."""

from shopkit import ConflictError, ShopError, UnauthorizedError


class EmailTakenError(ConflictError):
    title, slug = "Email already registered", "email-taken"

    def __init__(self) -> None:
        super().__init__("An account with this email already exists.")


class InvalidCredentialsError(UnauthorizedError):
    """The same answer for an unknown email and a wrong password."""

    title, slug = "Invalid credentials", "invalid-credentials"

    def __init__(self) -> None:
        super().__init__("The email or password is incorrect.")


class LoginThrottledError(ShopError):
    """Too many failed logins for one email lately, whether an account has it or not: the same answer either way."""

    status, title, slug = 429, "Too many failed logins", "login-throttled"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Too many failed logins for this email; retry after the seconds in Retry-After.",
            headers={"Retry-After": str(retry_after)},
        )


class MissingTokenError(UnauthorizedError):
    title, slug = "Not authenticated", "missing-token"

    def __init__(self) -> None:
        super().__init__("A bearer token is required.")


class InvalidTokenError(UnauthorizedError):
    title, slug = "Invalid token", "invalid-token"

    def __init__(self) -> None:
        super().__init__("The bearer token is invalid or has expired.")
