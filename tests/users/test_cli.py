import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from shop_devtools.pg import EmbeddedPostgres
from shop_devtools.provision import drop_database, ensure_database
from shop_users.main import MIGRATIONS, serve
from shopkit import head_revision


@pytest.fixture
def empty_database(postgres: EmbeddedPostgres) -> Iterator[str]:
    name = "users_empty_" + uuid.uuid4().hex[:8]
    try:
        yield ensure_database(postgres.admin_url(), name=name, role="users", password="users")
    finally:
        drop_database(postgres.admin_url(), name)


def _shop_users(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("USERS_") and k != "ENVIRONMENT"}
    return subprocess.run(
        [sys.executable, "-m", "shop_users", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_migrate_brings_an_empty_database_to_head(empty_database: str) -> None:
    result = _shop_users("migrate", DATABASE_URL=empty_database)

    assert result.returncode == 0, result.stderr
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (head_revision(MIGRATIONS),)
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)


def test_production_without_a_key_does_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["shop-users", "serve"])
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.delenv("USERS_JWT_PRIVATE_KEY", raising=False)

    with pytest.raises(SystemExit) as exit_info:
        serve()

    assert "USERS_JWT_PRIVATE_KEY is required in production" in str(exit_info.value.code)
