"""`make run`'s PostgreSQL and databases: the lock on the data directory, the embedded server started (after
stopping one a SIGKILLed launcher left behind) and stopped again, or the server POSTGRES_ADMIN_URL names, the
ports checked free first, and every service's database, role and migrations, with the URL each service is given
before provisioning has run."""

import contextlib
import fcntl
import logging
import socket
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

from shop_devtools.pg import EmbeddedPostgres, url_for
from shop_devtools.processes import LOCAL_HOST, LaunchError
from shop_devtools.runconfig import Config
from shop_devtools.topology import DATABASES

LOCK_FILE = "run.lock"


log = logging.getLogger("shop_devtools.run")


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Holds an exclusive lock on the data directory while the shop runs; the kernel releases it however the
    launcher ends, so a held lock always means another launcher is alive."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / LOCK_FILE).open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LaunchError(f"another `make run` is already using {data_dir}; stop it first") from None
        yield


def stop_leftover_postgres(postgres: EmbeddedPostgres) -> None:
    """Stops a server a previous launcher started on this data directory but could not stop (it was SIGKILLed)."""
    if (postgres.pgdata / "postmaster.pid").exists():
        log.info("stopping the PostgreSQL a previous run left behind")
        stop_postgres(postgres)


def start_postgres(postgres: EmbeddedPostgres) -> None:
    first = not (postgres.pgdata / "PG_VERSION").exists()
    log.info(
        "%s PostgreSQL in %s on %s:%d",
        "creating and starting" if first else "starting",
        postgres.pgdata,
        LOCAL_HOST,
        postgres.port,
    )
    try:
        postgres.start()
    except subprocess.CalledProcessError as exc:
        raise LaunchError(
            f"PostgreSQL did not start: {(exc.stderr or exc.stdout or '').strip()}\n"
            f"see {postgres.data_dir / 'postgres.log'}"
        ) from None


def stop_postgres(postgres: EmbeddedPostgres) -> None:
    try:
        postgres.stop()
    except subprocess.CalledProcessError as exc:  # e.g. a stale postmaster.pid whose server is long gone
        log.warning("pg_ctl stop: %s", (exc.stderr or exc.stdout or "").strip())
    else:
        log.info("PostgreSQL stopped")


def check_ports_free(ports: Mapping[str, int]) -> None:
    for owner, port in ports.items():
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn and PostgreSQL do
            try:
                sock.bind((LOCAL_HOST, port))
            except OSError:
                raise LaunchError(
                    f"port {port} ({owner}) is already in use on {LOCAL_HOST}: stop what listens there "
                    f"(another `make run`?) or choose another port"
                ) from None


def database_urls(admin_url: str) -> dict[str, str]:
    """The URL `provision` gives each service's role to its database: known before provisioning has run."""
    # the role, its password and the database are all named after the service
    return {s.name: url_for(admin_url, user=s.name, password=s.name, database=s.name) for s in DATABASES}


def provision_databases(admin_url: str, expected: Mapping[str, str]) -> None:
    # Imported here, not at the top: importing the migrations pulls in every service's models (seconds of CPU),
    # and doing it while the services start instead of before cuts a warm start by that much.
    from shop_devtools.provision import provision

    log.info("creating the databases and roles, running the migrations")
    urls = provision(admin_url)
    if urls != dict(expected):
        raise LaunchError(f"provisioning gave other database URLs than the services were given: {urls}")


def start_database(config: Config, cleanup: contextlib.ExitStack) -> EmbeddedPostgres | None:
    """The embedded server, started (and stopped at clean-up), or None when POSTGRES_ADMIN_URL names a server."""
    ports = {instance.name: instance.port for instance in config.instances()}
    if config.admin_url:
        check_ports_free(ports)
        return None
    postgres = EmbeddedPostgres(config.data_dir, config.pg_port)
    stop_leftover_postgres(postgres)
    check_ports_free({**ports, "PostgreSQL": postgres.port})
    cleanup.callback(stop_postgres, postgres)
    start_postgres(postgres)
    return postgres
