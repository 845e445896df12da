"""Login throttling per email: after a few failed logins for one email, its further attempts wait a while, longer
with each failure, up to a cap.

Keyed by the email alone: never by whether an account has it (an unknown email gets the same answers, so they tell
nothing about which emails are registered), and never by the client's address (behind the gateway every caller has
the same one). The counts live in PostgreSQL, shared by every replica, under the SHA-256 digest of the normalized
email; a lock is not stored but follows from the count and the time of the last failure, both the database's.
"""

import hashlib
import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import DateTime, Interval, bindparam, case, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shop_users.models import LoginFailures

EXPIRED_BATCH = 100
"""Expired rows deleted with each recorded failure: at most one row is added per failure, so leftovers shrink."""
MAX_DOUBLINGS = 32
"""Beyond this many doublings any allowed base (at least 1 ms) is past any allowed cap (at most an hour)."""
LOGGED_DIGEST_CHARS = 12
"""Logs name an email by this much of its digest: enough to follow one email's attempts, never the email."""


def email_digest(email: str) -> str:
    """The throttle's key for `email`: the SHA-256 hex digest of it stripped and lowercased, as login matches it."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


@dataclass(frozen=True)
class LoginThrottle:
    """The policy: `free_failures` failures in a row answered at full speed, then a lock of `lock_base_seconds`
    after the last free one, doubling with each further failure up to `lock_max_seconds`. The count starts again
    once no failure came for `window_seconds`, and a successful login clears it."""

    free_failures: int = 5
    window_seconds: int = 900
    lock_base_seconds: float = 1.0
    lock_max_seconds: int = 60

    def lock_seconds(self, failures: int) -> float:
        """How long an email stays locked after its `failures`-th failure in a row."""
        if failures < self.free_failures:
            return 0.0
        doublings = min(failures - self.free_failures, MAX_DOUBLINGS)
        return min(self.lock_base_seconds * 2.0**doublings, float(self.lock_max_seconds))

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_seconds)


_NOW = func.statement_timestamp(type_=DateTime(timezone=True))
_WINDOW = bindparam("window", type_=Interval)
_EXPIRED = LoginFailures.last_failed_at < _NOW - _WINDOW

_STATE = select(LoginFailures.failures, LoginFailures.last_failed_at, _NOW).where(
    LoginFailures.email_digest == bindparam("digest")
)
_COUNT_FAILURE = (
    insert(LoginFailures)
    .values(email_digest=bindparam("digest"), failures=1, last_failed_at=_NOW)
    .on_conflict_do_update(
        index_elements=[LoginFailures.email_digest],
        set_={"failures": case((_EXPIRED, 1), else_=LoginFailures.failures + 1), "last_failed_at": _NOW},
    )
    .returning(LoginFailures.failures)
)
_DELETE_EXPIRED = (
    delete(LoginFailures)
    .where(
        LoginFailures.email_digest.in_(
            select(LoginFailures.email_digest)
            .where(_EXPIRED)
            .order_by(LoginFailures.last_failed_at)
            .limit(EXPIRED_BATCH)
            .with_for_update(skip_locked=True)
        ),
        _EXPIRED,
    )
    .execution_options(synchronize_session=False)
)
_CLEAR = (
    delete(LoginFailures)
    .where(LoginFailures.email_digest == bindparam("digest"))
    .execution_options(synchronize_session=False)
)


async def retry_after(session: AsyncSession, throttle: LoginThrottle, digest: str) -> int | None:
    """Whole seconds until the email may try again (rounded up, so waiting them is enough); None when it may now."""
    state = (await session.execute(_STATE, {"digest": digest})).one_or_none()
    if state is None:
        return None
    failures, last_failed_at, now = state
    remaining = (last_failed_at + timedelta(seconds=throttle.lock_seconds(failures)) - now).total_seconds()
    return math.ceil(remaining) if remaining > 0 else None


async def record_failure(session: AsyncSession, throttle: LoginThrottle, digest: str) -> int:
    """Counts a failed login for the email and returns its failures in a row.

    The count is one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING`, so replicas counting one email at once each
    add theirs (the row lock orders them) and the database's clock decides whether the last one is too old to count.
    Then up to `EXPIRED_BATCH` rows whose last failure is older than the window are deleted (oldest first, through
    the index on `last_failed_at`; rows another transaction holds are skipped, not waited for)."""
    failures = await session.scalar(_COUNT_FAILURE, {"digest": digest, "window": throttle.window})
    assert failures is not None
    await session.execute(_DELETE_EXPIRED, {"window": throttle.window})
    return failures


async def clear_failures(session: AsyncSession, digest: str) -> None:
    await session.execute(_CLEAR, {"digest": digest})
