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
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, NoReturn, Self
from urllib.parse import urlsplit, urlunsplit

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shop_devtools.pg import EmbeddedPostgres
from shop_devtools.restarts import CRASH_LOOP_SECONDS, RestartPolicy

LOCAL_HOST = "127.0.0.1"
DEFAULT_PG_PORT = 5433
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 0.2
KEY_FILE = "users-jwt-key.pem"
LOCK_FILE = "run.lock"


@dataclass(frozen=True)
class Service:
    name: str
    default_port: int
    upstreams: tuple[str, ...] = ()
    has_database: bool = True

    @property
    def module(self) -> str:
        return f"shop_{self.name}"

    @property
    def port_variable(self) -> str:
        return f"SHOP_{self.name.upper()}_PORT"


SERVICES = (
    Service("storefront", 8080, upstreams=("catalog", "users", "payment"), has_database=False),
    Service("catalog", 8081),
    Service("users", 8082),
    Service("payment", 8083, upstreams=("catalog", "users")),
)
NAME_WIDTH = max(len(service.name) for service in SERVICES)

log = logging.getLogger("shop_devtools.run")


class LaunchError(Exception):
    """Something prevents the shop from running; the message says what, for a human."""


class Shutdown(BaseException):  # a request to stop, like KeyboardInterrupt: not an error
    """Raised in the main thread by the first SIGINT or SIGTERM."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)


@dataclass(frozen=True)
class Config:
    data_dir: Path
    pg_port: int
    ports: Mapping[str, int]
    admin_url: str | None
    jwt_private_key: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Self:
        data_dir = Path(env["SHOP_DATA_DIR"]) if env.get("SHOP_DATA_DIR") else repository_root() / ".data"
        ports = {service.name: _port(env, service.port_variable, service.default_port) for service in SERVICES}
        pg_port = _port(env, "SHOP_PG_PORT", DEFAULT_PG_PORT)
        if len({*ports.values(), pg_port}) < len(ports) + 1:
            raise LaunchError(f"two processes were given the same port: {ports}, PostgreSQL {pg_port}")
        return cls(
            data_dir=data_dir.resolve(),
            pg_port=pg_port,
            ports=ports,
            admin_url=env.get("POSTGRES_ADMIN_URL") or None,
            jwt_private_key=env.get("USERS_JWT_PRIVATE_KEY") or None,
        )

    def url(self, service: str) -> str:
        return f"http://{LOCAL_HOST}:{self.ports[service]}"

    def public_url(self, service: str) -> str:
        return f"http://localhost:{self.ports[service]}"


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise LaunchError(f"{name} must be a port number, got {raw!r}")
    return int(raw)


def repository_root() -> Path:
    """The workspace root (where `uv.lock` is) above the current directory, or the current directory."""
    cwd = Path.cwd()
    return next((path for path in [cwd, *cwd.parents] if (path / "uv.lock").exists()), cwd)


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


def relay_output(source: str, stream: IO[bytes]) -> None:
    """Copies a child's output, line by line, until it closes its end of the pipe."""
    with stream:
        for raw in iter(stream.readline, b""):
            log.info("%s", raw.decode(errors="replace").rstrip(), extra={"source": source})


# Signals


def install_signal_handlers() -> None:
    """The first SIGINT, SIGTERM or SIGHUP (the terminal closed) raises `Shutdown` in the main thread; later ones
    are ignored, so the clean-up that follows (bounded by STOP_TIMEOUT_SECONDS) is never interrupted half-way."""
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
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as file:
            file.write(pem)
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


@dataclass
class Child:
    service: Service
    url: str
    process: "subprocess.Popen[bytes]"
    env: Mapping[str, str]
    started_at: float = field(default_factory=time.monotonic)
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    restart_at: float | None = None
    """When a dead process is due to start again."""

    @property
    def name(self) -> str:
        return self.service.name


def service_env(
    service: Service, config: Config, database_urls: Mapping[str, str], key: str, base: Mapping[str, str]
) -> dict[str, str]:
    """The environment given to the launcher, over the launcher's defaults, under what is per process."""
    prefix = service.name.upper()
    defaults = {"LOG_FORMAT": "console", "PYTHONUNBUFFERED": "1"}
    defaults |= {f"{prefix}_{upstream.upper()}_URL": config.url(upstream) for upstream in service.upstreams}
    if service.name == "users":
        defaults["USERS_JWT_PRIVATE_KEY"] = key
    env = defaults | dict(base)
    env |= {"HOST": LOCAL_HOST, "PORT": str(config.ports[service.name])}
    env.pop("DATABASE_URL", None)
    if service.has_database:
        env["DATABASE_URL"] = database_urls[service.name]
    return env


_DIE_WITH_PARENT = """\
import ctypes, os, runpy, signal, sys
ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: SIGKILL this process when the launcher dies
if os.getppid() != int(sys.argv[3]):  # it died before the line above
    sys.exit(70)
module, sys.argv = sys.argv[2], sys.argv[:1]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def _command(module: str) -> list[str]:
    """`python -m <module>`; on Linux through a first step that asks the kernel to SIGKILL the process when the
    launcher dies, taken in the child itself (a `preexec_fn` is unsafe once the relay threads run). `ps` still
    shows `-m <module>`."""
    if not sys.platform.startswith("linux"):
        return [sys.executable, "-m", module]
    return [sys.executable, "-c", _DIE_WITH_PARENT, "-m", module, str(os.getpid())]


def _start(service: Service, env: Mapping[str, str]) -> "subprocess.Popen[bytes]":
    return subprocess.Popen(
        _command(service.module),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def spawn(service: Service, config: Config, env: Mapping[str, str]) -> Child:
    process = _start(service, env)
    log.info("started %s (pid %d) on %s", service.name, process.pid, config.url(service.name))
    return Child(service, config.url(service.name), process, env)


def start_relays(children: list[Child]) -> list[threading.Thread]:
    threads = []
    for child in children:
        assert child.process.stdout is not None
        thread = threading.Thread(
            target=relay_output, args=(child.name, child.process.stdout), name=f"relay-{child.name}", daemon=True
        )
        thread.start()
        threads.append(thread)
    return threads


def stop_children(children: list[Child], relays: list[threading.Thread]) -> None:
    """SIGTERM to every service's process group, SIGKILL to those still there after STOP_TIMEOUT_SECONDS."""
    running = [child for child in children if child.process.poll() is None]
    for child in running:
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for child in running:
        try:
            child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s; killing it", child.name, STOP_TIMEOUT_SECONDS)
            _signal_group(child, signal.SIGKILL)
            child.process.wait()
    for relay in relays:
        relay.join(timeout=2)
    if running:
        log.info("services stopped")


def _signal_group(child: Child, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.process.pid, signum)  # the child leads its own group (start_new_session)


def check_alive(children: list[Child]) -> None:
    """While the shop starts, a service that dies stops it: it has never been ready, a restart would not help."""
    for child in children:
        code = child.process.poll()
        if code is not None:
            raise LaunchError(f"{child.name} {_how(code)} before it was ready; stopping the shop")


def wait_until_ready(children: list[Child], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = {child.name: child for child in children}
    reasons: dict[str, str] = {}
    with httpx.Client(timeout=1.0, trust_env=False) as client:
        while waiting:
            check_alive(children)
            for name, child in list(waiting.items()):
                reasons[name] = _readiness(client, child.url)
                if not reasons[name]:
                    del waiting[name]
            if not waiting:
                return
            if time.monotonic() > deadline:
                details = "; ".join(f"{name}: {reasons[name]}" for name in waiting)
                raise LaunchError(f"not ready after {timeout:.0f} s ({details})")
            time.sleep(POLL_SECONDS)


def _readiness(client: httpx.Client, base_url: str) -> str:
    """'' when the service is ready, else why not."""
    try:
        response = client.get(f"{base_url}/ready")
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return "" if response.status_code == 200 else f"{response.status_code} {response.text[:200]}"


def _how(code: int) -> str:
    return f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"


def supervise(children: list[Child], relays: list[threading.Thread]) -> NoReturn:
    """Keeps the shop up as a restart policy would (`shop_devtools.restarts`): a dead service is started again
    after its back-off while the others serve. Ends only by `Shutdown` (a signal) or `LaunchError` (a crash loop)."""
    while True:
        now = time.monotonic()
        for child in children:
            if child.restart_at is None and (code := child.process.poll()) is not None:
                delay = child.policy.after_death(now, ran_for=now - child.started_at)
                if delay is None:
                    raise LaunchError(
                        f"{child.name} {_how(code)}, and keeps dying ({len(child.policy.deaths)} times within "
                        f"{CRASH_LOOP_SECONDS:.0f} s): a crash loop; stopping the shop"
                    )
                log.warning(
                    "%s %s; starting it again in %.0f s (the others go on serving)", child.name, _how(code), delay
                )
                child.restart_at = now + delay
            elif child.restart_at is not None and now >= child.restart_at:
                child.process, child.started_at, child.restart_at = _start(child.service, child.env), now, None
                log.info("started %s again (pid %d) on %s", child.name, child.process.pid, child.url)
                relays += start_relays([child])
        time.sleep(POLL_SECONDS)


def banner(config: Config, postgres: EmbeddedPostgres | None) -> str:
    shop = config.public_url("storefront")
    services = "\n".join(
        f"    {service.name:<{NAME_WIDTH}}  {config.public_url(service.name)}  (docs: /docs, readiness: /ready)"
        for service in SERVICES
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
    if config.admin_url:
        check_ports_free({service.name: config.ports[service.name] for service in SERVICES})
        return None
    postgres = EmbeddedPostgres(config.data_dir, config.pg_port)
    stop_leftover_postgres(postgres)
    check_ports_free(
        {**{service.name: config.ports[service.name] for service in SERVICES}, "PostgreSQL": postgres.port}
    )
    cleanup.callback(stop_postgres, postgres)
    start_postgres(postgres)
    return postgres


def launch(config: Config, environ: Mapping[str, str], cleanup: contextlib.ExitStack) -> NoReturn:
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
    for service in SERVICES:
        children.append(spawn(service, config, service_env(service, config, urls, key, environ)))
    relays += start_relays(children)
    provision_databases(admin_url, urls)
    wait_until_ready(children, READY_TIMEOUT_SECONDS - (time.monotonic() - started))
    log.info("every service is ready, %.1f s after launch", time.monotonic() - started)
    print(banner(config, postgres), flush=True)
    supervise(children, relays)


def run(config: Config, environ: Mapping[str, str]) -> int:
    """Runs the shop until a signal (exit status 0) or a failure (1); returns once everything it started stopped."""
    install_signal_handlers()
    with contextlib.ExitStack() as cleanup:
        try:
            launch(config, environ, cleanup)
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
    except LaunchError as error:
        log.error("%s", error)
        raise SystemExit(2) from None
    raise SystemExit(run(config, os.environ))


if __name__ == "__main__":
    main()
