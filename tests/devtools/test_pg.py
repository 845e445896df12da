"""The embedded PostgreSQL: where its clients reach it, and that it runs wherever the clone is."""

import importlib.util
import os
import tomllib
from pathlib import Path

import psycopg
import pytest
from packaging.markers import Marker

from shop_devtools.pg import SOCKET_PATH_MAX, EmbeddedPostgres, find_bin_dir
from shop_devtools.processes import free_port


def test_clients_use_the_unix_socket_when_its_path_fits(tmp_path: Path) -> None:
    short = EmbeddedPostgres(tmp_path, 5433)
    assert short.admin_url("shop") == f"postgresql://postgres@/shop?host={tmp_path}&port=5433"
    assert short.admin_url("shop", socket=False) == "postgresql://postgres@127.0.0.1:5433/shop", "for containers"

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


def test_the_embedded_server_is_optional_where_pgserver_has_no_wheel() -> None:
    """pgserver ships no Linux arm64 wheel (and no sdist): there the lock must not require it, and find_bin_dir
    falls back to a PostgreSQL on the machine."""
    lock = tomllib.loads((Path(__file__).resolve().parents[2] / "uv.lock").read_text())
    packages = {package["name"]: package for package in lock["package"]}
    (requirement,) = (d for d in packages["shop-devtools"]["dependencies"] if d["name"] == "pgserver")
    marker = Marker(requirement["marker"])
    platforms = {
        ("linux", "x86_64"): "manylinux_2_17_x86_64",
        ("darwin", "arm64"): "macosx_11_0_arm64",
        ("darwin", "x86_64"): "macosx_10_9_x86_64",
        ("win32", "AMD64"): "win_amd64",
    }
    wheels = [wheel["url"] for wheel in packages["pgserver"]["wheels"]]
    for (system, machine), tag in platforms.items():
        assert marker.evaluate({"sys_platform": system, "platform_machine": machine})
        assert any(tag in wheel for wheel in wheels), f"no pgserver wheel for {system}/{machine}"
    assert not marker.evaluate({"sys_platform": "linux", "platform_machine": "aarch64"})


def test_without_pgserver_the_machines_postgresql_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PG_BIN_DIR", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    for version in ("15", "16"):
        (tmp_path / version / "bin").mkdir(parents=True)
        (tmp_path / version / "bin" / "postgres").touch()
    assert find_bin_dir(tmp_path) == tmp_path / "16" / "bin", "the newest PostgreSQL on the machine"
    with pytest.raises(RuntimeError, match=r"apt-get install postgresql.*PG_BIN_DIR.*POSTGRES_ADMIN_URL"):
        find_bin_dir(tmp_path / "nothing")
