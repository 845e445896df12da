"""The embedded PostgreSQL: where its clients reach it, and that it runs wherever the clone is."""

import os
from pathlib import Path

import psycopg
import pytest

from shop_devtools.pg import SOCKET_PATH_MAX, EmbeddedPostgres, find_bin_dir, free_port


def test_clients_use_the_unix_socket_when_its_path_fits(tmp_path: Path) -> None:
    short = EmbeddedPostgres(tmp_path, 5433)
    assert short.admin_url("shop") == f"postgresql://postgres@/shop?host={tmp_path}&port=5433"

    socket_name = "/.s.PGSQL.5433"
    deep = tmp_path / ("d" * (SOCKET_PATH_MAX + 1 - len(f"{tmp_path}/") - len(socket_name)))
    assert len(str(deep / ".s.PGSQL.5433")) == SOCKET_PATH_MAX + 1
    assert EmbeddedPostgres(deep, 5433).socket_dir is None
    assert EmbeddedPostgres(deep, 5433).admin_url("shop") == "postgresql://postgres@127.0.0.1:5433/shop"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")
def test_root_runs_it_from_a_clone_in_a_private_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a clone under /root or `mktemp -d`: the binaries (in the clone's `.venv`) behind a directory only root
    may enter, the data directory elsewhere (the tests' own, under pytest's temporary root)."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "bin").symlink_to(find_bin_dir(), target_is_directory=True)
    monkeypatch.setenv("PG_BIN_DIR", str(private / "bin"))
    server = EmbeddedPostgres(tmp_path / "data", free_port(), fast_and_unsafe=True)
    server.start()
    try:
        for url in (server.admin_url(), f"postgresql://postgres@127.0.0.1:{server.port}/postgres"):
            with psycopg.connect(url) as connection:
                assert connection.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
    assert private.stat().st_mode & 0o777 == 0o701, "search permission only: still not listable by others"
