"""A database and a role per service, created idempotently, then each service's Alembic migrations.

The role, the database and the grants are made by `k8s/base/postgres/provision.sql`, run with psql, the script the
StatefulSet and docker compose run too: each role owns its database and PUBLIC may not connect to it, so one
service's role cannot reach another's data.
"""

import os
import subprocess

import psycopg
from psycopg import sql

from shop_devtools.pg import find_bin_dir, url_for
from shop_devtools.topology import DATABASES
from shop_devtools.workspace import repository_root
from shopkit.migrations import upgrade


class ProvisionError(Exception):
    """psql could not provision a database; the message holds what it said."""


def ensure_database(admin_url: str, *, name: str, role: str, password: str, template: str | None = None) -> str:
    """Creates `role` and database `name` owned by it (a copy of `template`, when given) unless they exist, sets the
    role's password and the grants (`provision.sql`); returns the role's URL to it."""
    variables = {"role": role, "password": password, "database": name} | ({"template": template} if template else {})
    script = repository_root() / "k8s" / "base" / "postgres" / "provision.sql"
    argv = [str(find_bin_dir() / "psql"), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", f"--file={script}"]
    argv += [f"--set={key}={value}" for key, value in variables.items()]
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if (psql := subprocess.run([*argv, admin_url], env=env, capture_output=True, text=True, check=False)).returncode:
        raise ProvisionError(f"provisioning database {name} failed: {(psql.stderr or psql.stdout).strip()}")
    return url_for(admin_url, user=role, password=password, database=name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def provision(admin_url: str, *, suffix: str = "") -> dict[str, str]:
    """Every service's database, migrated to head; returns the service name → database URL map."""
    urls = {}
    for service in DATABASES:
        name = service.name  # the role, its password and its database are named after the service
        urls[name] = ensure_database(admin_url, name=name + suffix, role=name, password=name)
        upgrade(service.migrations, urls[name])
    return urls
