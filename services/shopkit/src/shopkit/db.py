"""Async SQLAlchemy 2 + psycopg 3: one engine per process, one session per request."""

import enum
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Enum, MetaData
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from shopkit.state import state_of

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def status_column(values: type[enum.StrEnum], length: int = 16) -> Enum:
    """A column of one of `values`, stored as its string value in a VARCHAR (the migrations' type, with a CHECK
    constraint of their own), read back as the enum member: no native PostgreSQL enum to migrate when one is added."""
    return Enum(
        values,
        native_enum=False,
        create_constraint=False,
        length=length,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
    )


def driver_url(url: str, *, driver: str = "psycopg") -> str:
    """`postgresql://...` (what libpq and Kubernetes Secrets speak) as a SQLAlchemy URL with the psycopg driver."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in {"postgresql", "postgres"}:
        raise ValueError("DATABASE_URL must be a postgresql:// URL")
    return f"postgresql+{driver}://{rest}"


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 0,
    application_name: str = "resilient-shop",
    pre_ping: bool = False,
) -> AsyncEngine:
    """A pool of at most `pool_size` connections (plus `max_overflow`, none by default: an overflow connection is
    opened for a burst and closed when it is returned, so a steady load would connect and fork a backend again
    and again, and every replica's worst case would count against PostgreSQL's `max_connections`).

    Waiting for a pooled connection is bounded by the request's deadline (the admission middleware cancels the
    wait) and by `pool_timeout` (then 503). No ping before every checkout by default: it would double the round
    trips of short statements. When PostgreSQL restarts, the first statement on a dead connection fails (a 503
    with Retry-After, see `shopkit.problems`) and SQLAlchemy then discards every connection of the pool at once.
    """
    return create_async_engine(
        driver_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=pre_ping,
        pool_timeout=5,
        connect_args={"connect_timeout": 3, "application_name": application_name},
    )


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def autocommit_engine(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, each statement committing on its own: for work that is one statement (a conditional
    `UPDATE ... RETURNING`, an `INSERT ... ON CONFLICT`), without the BEGIN and COMMIT round trips. Core statements
    run on its connections skip the ORM session's work as well."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def autocommit(maker: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    """Sessions on `autocommit_engine`: single reads that load ORM objects."""
    return async_sessionmaker(autocommit_engine(maker.kw["bind"]), expire_on_commit=False)


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Commits when the route returns (before the response is sent) and rolls back when it raises."""
    async with state_of(request).database.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]


async def _transaction(request: Request) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction, for Core statements (no ORM session, no objects to track): committed when
    the route returns, before the response is sent, and rolled back when it raises."""
    async with state_of(request).database.engine.begin() as connection:
        yield connection


TransactionDep = Annotated[AsyncConnection, Depends(_transaction, scope="function")]


async def _autocommit_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    async with state_of(request).database.autocommit_engine.connect() as connection:
        yield connection


AutocommitConnectionDep = Annotated[AsyncConnection, Depends(_autocommit_connection, scope="function")]
"""For a route whose change is one statement (a conditional `UPDATE ... RETURNING`), and for single reads: each
statement commits on its own, without the BEGIN and COMMIT round trips of `TransactionDep`."""
