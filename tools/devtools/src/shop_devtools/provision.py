"""A database and a role per service, created idempotently, then each service's Alembic migrations.

The grants are those of `k8s/base/postgres/provision.sql`, which the StatefulSet and docker compose run with psql:
each role owns its database and PUBLIC may not connect to it, so one service's role cannot reach another's data.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from shop_devtools.topology import DATABASES
from shopkit.migrations import upgrade


@dataclass(frozen=True)
class ServiceDatabase:
    service: str
    migrations: str


SERVICE_DATABASES = tuple(ServiceDatabase(service.name, service.migrations) for service in DATABASES)


def url_for(admin_url: str, *, user: str, password: str, database: str) -> str:
    parts = urlsplit(admin_url)
    host = parts.hostname or ""  # none: a Unix socket, named in the query (`?host=/dir&port=5433`)
    netloc = f"{user}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, f"/{database}", parts.query, ""))


def ensure_database(admin_url: str, *, name: str, role: str, password: str, template: str | None = None) -> str:
    """Creates `role` and database `name` owned by it unless they exist; returns the role's URL to it."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
            )
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            statement = sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(role))
            if template:
                statement += sql.SQL(" TEMPLATE {} STRATEGY FILE_COPY").format(sql.Identifier(template))
            conn.execute(statement)
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))
        conn.execute(sql.SQL("GRANT ALL ON DATABASE {} TO {}").format(sql.Identifier(name), sql.Identifier(role)))
    return url_for(admin_url, user=role, password=password, database=name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def provision(admin_url: str, *, suffix: str = "") -> dict[str, str]:
    """Every service's database, migrated to head; returns the service name → database URL map."""
    urls = {}
    for db in SERVICE_DATABASES:
        url = ensure_database(admin_url, name=db.service + suffix, role=db.service, password=db.service)
        upgrade(db.migrations, url)
        urls[db.service] = url
    return urls
