"""`make run`: the whole shop on this machine, without Docker.

Starts an embedded PostgreSQL (data kept in `.data/`, so a second run finds its products, users and payments),
creates a database and a role per service, runs every migration, starts the four services as child processes,
waits until each one is ready and prints the shop's URL. Ctrl-C or SIGTERM stops every process it started,
PostgreSQL included. A service that dies once the shop is up is started again after a back-off while the others
go on serving, as a restart policy would (`shop_devtools.restarts`); one dying before it was ever ready, or
dying again and again (a crash loop), stops the shop, and the launcher says which one, how, and exits 1.

Settings, all optional, read from the environment:

- `SHOP_DATA_DIR`: where PostgreSQL's files, its log and the users' signing key live (default: `.data/` at the
  root of the repository).
- `SHOP_PG_PORT`: the embedded PostgreSQL's port on 127.0.0.1 (default 5433).
- `SHOP_STOREFRONT_PORT`, `SHOP_CATALOG_PORT`, `SHOP_USERS_PORT`, `SHOP_PAYMENT_PORT`: the services' ports
  (default 8080, 8081, 8082, 8083).
- `PAYMENT_REPLICAS`: how many payment processes to run (default 1, at most 5), as the Deployment runs several pods:
  `payment-1` on `SHOP_PAYMENT_PORT`, `payment-2` on the next port, and so on, all behind storefront (its
  `STOREFRONT_PAYMENT_URL` lists them). With several, one dying leaves the others taking the checkouts.
- `POSTGRES_ADMIN_URL`: a superuser URL of an existing PostgreSQL server; when set, no embedded server is started
  and that server gets the databases and roles.
- `USERS_JWT_PRIVATE_KEY`: the PEM of users' Ed25519 signing key; when unset, one is generated once into
  `<data dir>/users-jwt-key.pem`, so tokens stay valid across restarts.

Every other variable reaches every service unchanged (`CHAOS_ENABLED=true CHAOS_TOKEN=... make run`). The launcher
only supplies defaults (`LOG_FORMAT=console`, each service's URLs of the others) that the environment overrides,
and sets what is per process: `HOST=127.0.0.1`, `PORT` and `DATABASE_URL`.

Process lifetime. Each service runs in its own session (`start_new_session=True`): Ctrl-C in the terminal reaches
the launcher alone, which then stops the services in order (SIGTERM, then SIGKILL after 10 s) before PostgreSQL,
instead of every process racing to exit at once. On Linux each service also asks the kernel to SIGKILL it when
the launcher dies (`PR_SET_PDEATHSIG`), so even a SIGKILLed launcher leaves no service holding a port.
PostgreSQL detaches itself (pg_ctl puts it in its own session) and would outlive a SIGKILLed launcher; the next
run, holding the data directory's lock, finds it and stops it before starting afresh.

Rollout. `SIGUSR1` to the launcher is `kubectl rollout restart deployment/payment` for `make run`: the payment
replicas are stopped (SIGTERM: they drain) and started again one at a time, the next only once the last is ready
again. Ports are fixed here, so there is no surge: one replica of N is away at a time (with one, payment is away for
a few seconds and storefront's retries cover the gap). The drill's `--fault rollout` sends it. The launcher's pid,
and every process with its URL, is in `<data dir>/run.json` while the shop runs (`shop_devtools.runstate`).
"""

import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import NoReturn, Self
from urllib.parse import urlsplit, urlunsplit

from shop_devtools.pg import EmbeddedPostgres
from shop_devtools.processes import (
    LOCAL_HOST,
    NAME_WIDTH,
    REPLICATED,
    SERVICES,
    Child,
    Instance,
    LaunchError,
    spawn,
    start_relays,
    stop_children,
    wait_until_ready,
)
from shop_devtools.runstate import remove
from shop_devtools.supervisor import publish, supervise
from shop_devtools.workspace import WorkspaceError, private_key_pem, repository_root

DEFAULT_PG_PORT = 5433
READY_TIMEOUT_SECONDS = 60.0
KEY_FILE = "users-jwt-key.pem"
LOCK_FILE = "run.lock"
MAX_REPLICAS = 5


log = logging.getLogger("shop_devtools.run")


class Shutdown(BaseException):  # a request to stop, like KeyboardInterrupt: not an error
    """Raised in the main thread by the first SIGINT or SIGTERM."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)


@dataclass(frozen=True)
class Config:
    data_dir: Path
    pg_port: int
    ports: Mapping[str, int]
    """Each service's port (its first replica's)."""
    admin_url: str | None
    jwt_private_key: str | None
    payment_replicas: int = 1

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Self:
        data_dir = Path(env["SHOP_DATA_DIR"]) if env.get("SHOP_DATA_DIR") else repository_root() / ".data"
        ports = {service.name: _port(env, service.port_variable, service.default_port) for service in SERVICES}
        raw_replicas = env.get("PAYMENT_REPLICAS") or "1"
        if not raw_replicas.isdigit() or not 1 <= int(raw_replicas) <= MAX_REPLICAS:
            raise LaunchError(f"PAYMENT_REPLICAS must be a number from 1 to {MAX_REPLICAS}, got {raw_replicas!r}")
        config = cls(
            data_dir=data_dir.resolve(),
            pg_port=_port(env, "SHOP_PG_PORT", DEFAULT_PG_PORT),
            ports=ports,
            admin_url=env.get("POSTGRES_ADMIN_URL") or None,
            jwt_private_key=env.get("USERS_JWT_PRIVATE_KEY") or None,
            payment_replicas=int(raw_replicas),
        )
        taken = [instance.port for instance in config.instances()] + [config.pg_port]
        if len(set(taken)) < len(taken) or max(taken) > 65535:
            described = ", ".join(f"{i.name} {i.port}" for i in config.instances())
            raise LaunchError(f"two processes were given the same port: {described}, PostgreSQL {config.pg_port}")
        return config

    def instances(self, service: str | None = None) -> list[Instance]:
        """Every process to run (of `service` only, when given): replicas take the ports after their service's."""
        found = []
        for each in SERVICES:
            count = self.payment_replicas if each.name == REPLICATED else 1
            if service in {None, each.name}:
                found += [
                    Instance(each, each.name if count == 1 else f"{each.name}-{n + 1}", self.ports[each.name] + n)
                    for n in range(count)
                ]
        return found

    def url(self, service: str) -> str:
        """The service's URL as its clients are given it: every replica's, separated by commas."""
        return ",".join(instance.url for instance in self.instances(service))

    def public_url(self, service: str) -> str:
        return f"http://localhost:{self.ports[service]}"


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise LaunchError(f"{name} must be a port number, got {raw!r}")
    return int(raw)


# Output: every line is prefixed with its source ("catalog    | ...", "run        | ...").


class _SourceFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "source"):
            record.source = "run"
        return True


def configure_output() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_SourceFilter())
    handler.setFormatter(logging.Formatter(f"%(source)-{NAME_WIDTH}s | %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


# Signals


def install_signal_handlers() -> threading.Event:
    """The first SIGINT, SIGTERM or SIGHUP (the terminal closed) raises `Shutdown` in the main thread; later ones
    are ignored, so the clean-up that follows (bounded by STOP_TIMEOUT_SECONDS) is never interrupted half-way.
    SIGUSR1 asks for a rollout of payment: the returned event is set."""
    first: list[float] = []  # when the first signal came

    def handle(signum: int, frame: FrameType | None) -> None:
        if first:
            if time.monotonic() - first[0] > 1:  # not the echo of one Ctrl-C (`uv run` forwards it again)
                log.info("already stopping; please wait")
            return
        first.append(time.monotonic())
        raise Shutdown(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handle)
    rollout = threading.Event()
    signal.signal(signal.SIGUSR1, lambda signum, frame: rollout.set())
    return rollout


# The data directory, PostgreSQL and the databases


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


def signing_key(config: Config) -> str:
    """Users' Ed25519 key: from the environment, else from the data directory, created there the first time."""
    if config.jwt_private_key:
        return config.jwt_private_key
    path = config.data_dir / KEY_FILE
    if not path.exists():
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
            file.write(private_key_pem())
        log.info("created users' token signing key in %s", path)
    return path.read_text()


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


# The services


def service_env(
    instance: Instance, config: Config, database_urls: Mapping[str, str], key: str, base: Mapping[str, str]
) -> dict[str, str]:
    """The environment given to the launcher, over the launcher's defaults, under what is per process."""
    service = instance.service
    prefix = service.name.upper()
    defaults = {"LOG_FORMAT": "console", "PYTHONUNBUFFERED": "1"}
    defaults |= {f"{prefix}_{upstream.upper()}_URL": config.url(upstream) for upstream in service.upstreams}
    if service.name == "users":
        defaults["USERS_JWT_PRIVATE_KEY"] = key
    env = defaults | dict(base)
    env |= {"HOST": LOCAL_HOST, "PORT": str(instance.port)}
    env.pop("DATABASE_URL", None)
    if service.has_database:
        env["DATABASE_URL"] = database_urls[service.name]
    return env


def banner(config: Config, postgres: EmbeddedPostgres | None) -> str:
    shop = config.public_url("storefront")
    services = "\n".join(
        f"    {instance.name:<{NAME_WIDTH}}  http://localhost:{instance.port}  (docs: /docs, readiness: /ready)"
        for instance in config.instances()
    )
    database = (
        f"embedded PostgreSQL on {LOCAL_HOST}:{postgres.port}, data in {postgres.data_dir}"
        if postgres
        else "the server of POSTGRES_ADMIN_URL"
    )
    return (
        f"\n  resilient-shop is running\n\n"
        f"    shop      {shop}\n"
        f"    API       {shop}/api/products\n"
        f"    API docs  {shop}/docs\n\n"
        f"{services}\n\n"
        f"    database  {database}\n\n"
        f"  Press Ctrl-C to stop everything.\n"
    )


# The whole run


def database_urls(admin_url: str) -> dict[str, str]:
    """The URL `provision` gives each service's role to its database: known before provisioning has run."""
    parts = urlsplit(admin_url)
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")  # no host: a Unix socket, in the query
    urls = {}
    for service in SERVICES:
        if service.has_database:
            name = service.name  # the role, its password and the database are all named after the service
            urls[name] = urlunsplit((parts.scheme, f"{name}:{name}@{host}", f"/{name}", parts.query, ""))
    return urls


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


def launch(
    config: Config, environ: Mapping[str, str], cleanup: contextlib.ExitStack, rollout: threading.Event
) -> NoReturn:
    """Everything `make run` does, in order; whatever it starts is registered with `cleanup` to be stopped.

    The services start as soon as PostgreSQL is up, while the databases are provisioned and migrated: importing a
    service takes seconds, and until its database is at the head revision its /ready answers 503, exactly as in
    Kubernetes while the migration Job runs.
    """
    started = time.monotonic()
    cleanup.enter_context(data_dir_lock(config.data_dir))
    postgres = start_database(config, cleanup)
    admin_url = postgres.admin_url() if postgres else config.admin_url
    assert admin_url is not None
    urls = database_urls(admin_url)
    key = signing_key(config)
    children: list[Child] = []
    relays: list[threading.Thread] = []
    cleanup.callback(stop_children, children, relays)
    for instance in config.instances():
        children.append(spawn(instance, service_env(instance, config, urls, key, environ)))
    relays += start_relays(children)
    provision_databases(admin_url, urls)
    wait_until_ready(children, READY_TIMEOUT_SECONDS - (time.monotonic() - started))
    log.info("every service is ready, %.1f s after launch", time.monotonic() - started)
    print(banner(config, postgres), flush=True)
    cleanup.callback(remove, config.data_dir)
    publish(children, config.data_dir)
    supervise(children, relays, config.data_dir, rollout)


def run(config: Config, environ: Mapping[str, str]) -> int:
    """Runs the shop until a signal (exit status 0) or a failure (1); returns once everything it started stopped."""
    rollout = install_signal_handlers()
    with contextlib.ExitStack() as cleanup:
        try:
            launch(config, environ, cleanup, rollout)
        except Shutdown as stop:
            log.info("received %s; stopping", stop)
            return 0
        except LaunchError as error:
            log.error("%s", error)
            return 1


def main() -> None:
    configure_output()
    try:
        config = Config.from_env(os.environ)
    except (LaunchError, WorkspaceError) as error:
        log.error("%s", error)
        raise SystemExit(2) from None
    raise SystemExit(run(config, os.environ))


if __name__ == "__main__":
    main()
