"""`make run`: the whole shop on this machine, without Docker.

Starts an embedded PostgreSQL (data kept in `.data/`, so a second run finds its products, users and payments),
creates a database and a role per service, runs every migration, starts the four services as child processes,
waits until each one is ready and prints the shop's URL. Ctrl-C or SIGTERM stops every process it started,
PostgreSQL included. The launcher plays the kubelet from the manifests (`shop_devtools.kubelet`): payment runs
the Deployment's three replicas, each process gets its pod's memory budget, and its liveness and readiness probes
are asked as the kubelet asks them. A service that dies or fails liveness once the shop is up is started again after
a back-off while the others go on serving, as a restart policy would (`shop_devtools.restarts`), in
CrashLoopBackOff if it keeps dying; one dying before it was ever ready stops the shop, and the launcher says which
one, how, and exits 1.

Its settings, all optional, are read from the environment (`shop_devtools.runconfig` lists them).

Every other variable reaches every service unchanged (`CHAOS_ENABLED=true CHAOS_TOKEN=... make run`). The launcher
only supplies defaults (`LOG_FORMAT=console`, each service's URLs of the others, the shop's own credentials each
service reads) that the environment overrides, and sets what is per process: `HOST=127.0.0.1`, `PORT` and
`DATABASE_URL`.

Credentials. The shop's own credentials (`shop_devtools.credentials`: payment's, the storefront's, the operator's)
are generated once into `<data dir>/credentials.env` (mode 0600) and kept there, so a restart keeps them and the
operator's tools (the drill, the bench) read the operator's from the same file; one set in the launcher's
environment wins over the file's (a rotation by hand). Each service gets the ones its settings read
(`topology.Service.credentials`). No value is ever printed or logged: the banner names the file.

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
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from types import FrameType
from typing import NoReturn

from shop_devtools import kubelet, processes
from shop_devtools.credentials import NAMES, OPERATOR, ensure_credentials
from shop_devtools.database import data_dir_lock, database_urls, provision_databases, start_database
from shop_devtools.pg import EmbeddedPostgres
from shop_devtools.runconfig import Config, credentials_file
from shop_devtools.runstate import FILE_NAME, remove
from shop_devtools.supervisor import publish, supervise
from shop_devtools.workspace import WorkspaceError, private_key_pem, write_private

READY_TIMEOUT_SECONDS = 60.0
KEY_FILE = "users-jwt-key.pem"


log = logging.getLogger("shop_devtools.run")


class Shutdown(BaseException):  # a request to stop, like KeyboardInterrupt: not an error
    """Raised in the main thread by the first SIGINT or SIGTERM, with the signal's name."""


def configure_output() -> None:
    """Every line prefixed with its source: `catalog    | ...`, or `run        | ...` for the launcher's own."""
    handler = logging.StreamHandler(sys.stdout)
    line = f"%(source)-{processes.NAME_WIDTH}s | %(message)s"
    handler.setFormatter(logging.Formatter(line, defaults={"source": "run"}))
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
        raise Shutdown(signal.Signals(signum).name)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handle)
    rollout = threading.Event()
    signal.signal(signal.SIGUSR1, lambda signum, frame: rollout.set())
    return rollout


# The signing key and the services


def signing_key(config: Config) -> str:
    """Users' Ed25519 key: from the environment, else from the data directory, created there the first time."""
    if config.jwt_private_key:
        return config.jwt_private_key
    path = config.data_dir / KEY_FILE
    if not path.exists():
        write_private(path, private_key_pem(), replace=False)
        log.info("created users' token signing key in %s", path)
    return path.read_text()


def shop_credentials(config: Config, environ: Mapping[str, str]) -> dict[str, str]:
    """The shop's own credentials: each one from the environment when it is set there (a rotation by hand), else
    from `<data dir>/credentials.env`, made there (mode 0600) the first time and kept."""
    path = credentials_file(config.data_dir)
    existed = path.exists()
    kept = ensure_credentials(path)
    if not existed:
        log.info("created the shop's credentials in %s", path)
    return {name: environ.get(name) or kept[name] for name in NAMES}


def service_env(
    instance: processes.Instance,
    config: Config,
    database_urls: Mapping[str, str],
    key: str,
    credentials: Mapping[str, str],
    base: Mapping[str, str],
) -> dict[str, str]:
    """The environment given to the launcher, over the launcher's defaults, under what is per process."""
    service = instance.service
    urls = {upstream: config.url(upstream) for upstream in service.upstreams}
    wired = processes.wiring(service, database_urls, urls, credentials)
    own = {"HOST": processes.LOCAL_HOST, "PORT": str(instance.port)}
    if service.has_database:
        own["DATABASE_URL"] = wired.pop("DATABASE_URL")
    defaults = {"LOG_FORMAT": "console", "PYTHONUNBUFFERED": "1"} | wired  # URLs and credentials, overridable
    if service.name == "users":
        defaults["USERS_JWT_PRIVATE_KEY"] = key
    if service.name == "storefront":  # the recovery page reads every process, its restarts and why there
        defaults["STOREFRONT_RECOVERY_RUN_STATE"] = str(config.data_dir / FILE_NAME)
    env = defaults | dict(base)
    env.pop("DATABASE_URL", None)
    return env | own


def banner(config: Config, postgres: EmbeddedPostgres | None, environ: Mapping[str, str]) -> str:
    shop = f"http://localhost:{config.ports['storefront']}"
    operator = "the environment" if environ.get(OPERATOR) else str(credentials_file(config.data_dir))
    services = "".join(
        f"    {each.name:<{processes.NAME_WIDTH}}  http://localhost:{each.port}  (docs: /docs, readiness: /ready)\n"
        for each in config.instances()
    )
    database = "the server of POSTGRES_ADMIN_URL"
    if postgres:
        database = f"embedded PostgreSQL on {processes.LOCAL_HOST}:{postgres.port}, data in {postgres.data_dir}"
    return (
        f"\n  resilient-shop is running\n\n"
        f"    shop      {shop}\n"
        f"    API       {shop}/api/products\n"
        f"    API docs  {shop}/docs\n"
        f"    operator  {shop}/ops/  (Authorization: Bearer <{OPERATOR} from {operator}>)\n"
        f"    recovery  {shop}/recovery  (every process live: log in with {OPERATOR})\n\n"
        f"{services}\n"
        f"    database  {database}\n\n"
        f"  Press Ctrl-C to stop everything.\n"
    )


# The whole run


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
    admin_url = postgres.admin_url() if postgres else str(config.admin_url)  # no embedded server: the one it names
    urls = database_urls(admin_url)
    key = signing_key(config)
    credentials = shop_credentials(config, environ)
    children: list[processes.Child] = []
    cleanup.callback(processes.stop_children, children)
    specs, shared = kubelet.pod_specs(), kubelet.shared_config()
    for instance in config.instances():
        base = {**kubelet.memory_env(specs[instance.service.name], shared), **environ}  # the environment's win
        children.append(processes.spawn(instance, service_env(instance, config, urls, key, credentials, base)))
    provision_databases(admin_url)
    processes.wait_until_ready(children, READY_TIMEOUT_SECONDS - (time.monotonic() - started))
    log.info("every service is ready, %.1f s after launch", time.monotonic() - started)
    print(banner(config, postgres, environ), flush=True)
    cleanup.callback(remove, config.data_dir)
    publish(children, config.data_dir)
    cleanup.callback(kubelet.start_probers(children, specs).set)
    supervise(children, config.data_dir, rollout)


def run(config: Config, environ: Mapping[str, str]) -> int:
    """Runs the shop until a signal (exit status 0) or a failure (1); returns once everything it started stopped."""
    rollout = install_signal_handlers()
    with contextlib.ExitStack() as cleanup:
        try:
            launch(config, environ, cleanup, rollout)
        except Shutdown as stop:
            log.info("received %s; stopping", stop)
            return 0
        except processes.LaunchError as error:
            log.error("%s", error)
            return 1


def main() -> None:
    configure_output()
    try:
        config = Config.from_env(os.environ)
    except (processes.LaunchError, WorkspaceError) as error:
        log.error("%s", error)
        raise SystemExit(2) from None
    raise SystemExit(run(config, os.environ))


if __name__ == "__main__":
    main()
