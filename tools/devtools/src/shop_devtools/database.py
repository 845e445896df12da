"""`make run`'s PostgreSQL and databases: the lock on the data directory, the embedded server started (after
stopping one a SIGKILLed launcher left behind) and stopped again, or the server POSTGRES_ADMIN_URL names, the
ports checked free first, and every service's database, role and migrations, with the URL each service is given
before provisioning has run."""

import contextlib
import fcntl
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

from shop_devtools.pg import EmbeddedPostgres, url_for
from shop_devtools.processes import LOCAL_HOST, LaunchError, log, ports_in_use
from shop_devtools.runconfig import Config
from shop_devtools.topology import DATABASES

LOCK_FILE = "run.lock"


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


def start_postgres(postgres: EmbeddedPostgres) -> None:
    doing = "starting" if (postgres.pgdata / "PG_VERSION").exists() else "creating and starting"
    log.info("%s PostgreSQL in %s on %s:%d", doing, postgres.pgdata, LOCAL_HOST, postgres.port)
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


def check_ports_free(owners: Mapping[int, str]) -> None:
    if busy := ports_in_use(owners):
        raise LaunchError(
            f"port {busy[0]} ({owners[busy[0]]}) is already in use on {LOCAL_HOST}: stop what listens there "
            f"(another `make run`?) or choose another port"
        )


def database_urls(admin_url: str) -> dict[str, str]:
    """The URL `provision` gives each service's role to its database: known before provisioning has run."""
    # the role, its password and the database are all named after the service
    return {s.name: url_for(admin_url, user=s.name, password=s.name, database=s.name) for s in DATABASES}


def provision_databases(admin_url: str) -> None:
    """What `database_urls` names: `provision` names each role, password and database after the service too."""
    # Imported here, not at the top: importing the migrations pulls in every service's models (seconds of CPU),
    # and doing it while the services start instead of before cuts a warm start by that much.
    from shop_devtools.provision import provision

    log.info("creating the databases and roles, running the migrations")
    provision(admin_url)


def start_database(config: Config, cleanup: contextlib.ExitStack) -> EmbeddedPostgres | None:
    """The embedded server, started (and stopped at clean-up), or None when POSTGRES_ADMIN_URL names a server."""
    owners = {instance.port: instance.name for instance in config.instances()}
    if config.admin_url:
        check_ports_free(owners)
        return None
    postgres = EmbeddedPostgres(config.data_dir, config.pg_port)
    if (postgres.pgdata / "postmaster.pid").exists():  # a previous launcher started it, then was SIGKILLed
        log.info("stopping the PostgreSQL a previous run left behind")
        stop_postgres(postgres)
    check_ports_free({**owners, postgres.port: "PostgreSQL"})
    cleanup.callback(stop_postgres, postgres)
    start_postgres(postgres)
    return postgres
