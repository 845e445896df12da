"""Accounts and login: the domain logic, free of HTTP. Functions only flush; the request session commits."""

import uuid

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shop_users import throttle
from shop_users.exceptions import EmailTakenError, InvalidCredentialsError, LoginThrottledError
from shop_users.models import EMAIL_INDEX, User
from shop_users.schemas import UserCreate
from shop_users.security import Passwords, TokenKeys
from shop_users.throttle import LOGGED_DIGEST_CHARS, LoginThrottle

log = structlog.get_logger(__name__)


async def find_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(func.lower(User.email) == func.lower(email)))


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


def _is_email_conflict(exc: IntegrityError) -> bool:
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None) == EMAIL_INDEX


async def register(session: AsyncSession, passwords: Passwords, data: UserCreate) -> User:
    """Creates an account; `EmailTakenError` when the email exists in any case, also when two requests race.

    The password is hashed before the database is touched, so no pooled connection idles through the argon2 work;
    the unique index on lower(email) is the only arbiter of duplicates.
    """
    user = User(email=data.email, name=data.name, password_hash=await passwords.hash(data.password))
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        if _is_email_conflict(exc):
            raise EmailTakenError from None
        raise
    log.debug("user_registered", user_id=str(user.id))
    return user


async def authenticate(
    session: AsyncSession, passwords: Passwords, login_throttle: LoginThrottle, email: str, password: str
) -> User:
    """The user whose credentials these are. Unknown email and wrong password fail alike, in similar time.

    An email with too many recent failures (`shop_users.throttle`) gets `LoginThrottledError` before any account is
    looked up or password hashed, whether an account has it or not; that attempt neither counts nor extends the
    lock. The read transaction ends before the argon2 work so its connection goes back to the pool meanwhile. A
    failure is counted and committed at once (the request's session rolls back on the error that follows); a
    success clears the email's failures with the request's commit.
    """
    digest = throttle.email_digest(email)
    retry_after = await throttle.retry_after(session, login_throttle, digest)
    if retry_after is not None:
        log.warning("login_throttled", email_digest=digest[:LOGGED_DIGEST_CHARS], retry_after=retry_after)
        raise LoginThrottledError(retry_after)
    user = await find_by_email(session, email)
    await session.commit()
    if not await passwords.verify(user.password_hash if user else None, password) or user is None:
        failures = await throttle.record_failure(session, login_throttle, digest)
        await session.commit()
        log.warning("login_failed", email_digest=digest[:LOGGED_DIGEST_CHARS], failures=failures)
        raise InvalidCredentialsError
    await throttle.clear_failures(session, digest)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = await passwords.hash(password)
    return user


def issue_token(keys: TokenKeys, user: User) -> str:
    token = keys.issue(user.id, user.email)
    log.debug("token_issued", user_id=str(user.id))
    return token
