"""Alembic per service, run as its own step (`shop-<service> migrate`), serialised by an advisory lock."""

import zlib
from typing import Any

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, pool, text
from sqlalchemy.ext.asyncio import AsyncConnection

from shopkit.db import driver_url


def alembic_config(script_location: str, database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", script_location)
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def upgrade(script_location: str, database_url: str) -> None:
    command.upgrade(alembic_config(script_location, database_url), "head")


def head_revision(script_location: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(script_location)).get_current_head()


async def current_revision(connection: AsyncConnection) -> str | None:
    def read(sync_connection: Any) -> str | None:
        return MigrationContext.configure(sync_connection).get_current_revision()

    return await connection.run_sync(read)


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's `migrations/env.py`: online migrations under a PostgreSQL advisory lock.

    Two replicas' init containers (or a Job retried by Kubernetes) may start at once; the lock makes the second
    wait and then find nothing left to do.
    """
    config = context.config
    url = config.attributes.get("database_url")
    if not url:
        raise RuntimeError("no database URL given to the migrations")
    lock_id = zlib.crc32(config.get_main_option("script_location", "").encode())
    engine = create_engine(driver_url(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": lock_id})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id})
            connection.commit()
    engine.dispose()
