"""One set of grants wherever the databases are made: `make run`, the tests and the container proof provision in
Python (`shop_devtools.provision`), the StatefulSet and docker compose run `k8s/base/postgres/provision.sql` with
psql. Both, against a real server, must leave the same owner and the same access list."""

import os
import subprocess
import uuid

import psycopg

from shop_devtools.pg import EmbeddedPostgres, find_bin_dir
from shop_devtools.provision import ensure_database
from shop_devtools.workspace import repository_root

PROVISION_SQL = repository_root() / "k8s" / "base" / "postgres" / "provision.sql"


def grants(admin_url: str, database: str) -> tuple[str, list[str], bool]:
    """Owner, access list (with the role's name made generic) and whether PUBLIC may connect."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_get_userbyid(datdba), datacl::text[], has_database_privilege('public', datname, 'CONNECT')"
            " FROM pg_database WHERE datname = %s",
            (database,),
        ).fetchone()
    assert row is not None, f"no database {database}"
    owner, acl, public_connects = row
    return (
        owner.replace(database, "ROLE"),
        sorted(entry.replace(database, "ROLE") for entry in acl or []),
        public_connects,
    )


def test_python_provisioning_grants_what_the_clusters_sql_grants(postgres: EmbeddedPostgres) -> None:
    in_python, in_sql = (f"grants_{way}_{uuid.uuid4().hex[:8]}" for way in ("py", "sql"))
    for _ in range(2):  # both are idempotent
        ensure_database(postgres.admin_url(), name=in_python, role=in_python, password="secret-1")
        psql = subprocess.run(
            [
                str(find_bin_dir() / "psql"),
                *("--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1"),
                *(f"--set=role={in_sql}", "--set=password=secret-2", f"--file={PROVISION_SQL}"),
                postgres.admin_url(),
            ],
            env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert psql.returncode == 0, psql.stdout + psql.stderr

    python, cluster = grants(postgres.admin_url(), in_python), grants(postgres.admin_url(), in_sql)
    assert python == cluster
    owner, _, public_connects = python
    assert owner == "ROLE", "each role owns its database"
    assert public_connects is False, "and no other role may connect to it"
