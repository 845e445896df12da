"""One provisioning script wherever the databases are made: `make run`, the tests and the container proof
(`shop_devtools.provision`), the StatefulSet and docker compose all run `k8s/base/postgres/provision.sql` with psql.
Against a real server, Python's way (a database named apart from its role, a clone of a template) and the cluster's
way (psql with `role` and `password` only) must leave the same owner and the same access list."""

import os
import subprocess
import uuid

import psycopg

from shop_devtools.pg import EmbeddedPostgres, find_bin_dir
from shop_devtools.provision import ensure_database
from shop_devtools.workspace import repository_root

PROVISION_SQL = repository_root() / "k8s" / "base" / "postgres" / "provision.sql"


def grants(admin_url: str, database: str, role: str | None = None) -> tuple[str, list[str], bool]:
    """Owner, access list (with the role's name made generic) and whether PUBLIC may connect; the role is named
    as its database unless given."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_get_userbyid(datdba), datacl::text[], has_database_privilege('public', datname, 'CONNECT')"
            " FROM pg_database WHERE datname = %s",
            (database,),
        ).fetchone()
    assert row is not None, f"no database {database}"
    owner, acl, public_connects = row
    generic = role or database
    return (
        owner.replace(generic, "ROLE"),
        sorted(entry.replace(generic, "ROLE") for entry in acl or []),
        public_connects,
    )


def test_python_provisioning_grants_what_the_clusters_sql_grants(postgres: EmbeddedPostgres) -> None:
    in_python, in_sql, cloned = (f"grants_{way}_{uuid.uuid4().hex[:8]}" for way in ("py", "sql", "clone"))
    for _ in range(2):  # both are idempotent
        ensure_database(postgres.admin_url(), name=in_python, role=in_python, password="secret-1")
        ensure_database(postgres.admin_url(), name=cloned, role=in_python, password="secret-1", template=in_python)
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
    assert grants(postgres.admin_url(), cloned, role=in_python) == python, "a clone is provisioned alike"
    owner, _, public_connects = python
    assert owner == "ROLE", "each role owns its database"
    assert public_connects is False, "and no other role may connect to it"
