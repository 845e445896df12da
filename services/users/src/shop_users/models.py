import uuid
from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shopkit import new_metadata

EMAIL_INDEX = "ix_users_email_lower"


class Base(DeclarativeBase):
    metadata = new_metadata()


class User(Base):
    """An account. The email is kept as given; uniqueness is case-insensitive through an index on lower(email)."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, server_default=func.gen_random_uuid())
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


Index(EMAIL_INDEX, func.lower(User.email), unique=True)


class LoginFailures(Base):
    """The recent failed logins of one email, whether an account has it or not, for the login throttle.

    Keyed by the SHA-256 hex digest of the normalized email, never the email itself. `failures` counts the failures
    since none came for a whole window; the row goes once its last failure is older than the window."""

    __tablename__ = "login_failures"

    email_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
