"""The container proof's database: PostgreSQL in a container on a named volume, SIGKILLed under load.

The StatefulSet's claim, on a real container engine: open transactions survive through persistent storage.

- The image is built here (`load/postgres/Dockerfile`: Debian's PostgreSQL on the services' base image), since no
  registry may be reachable. It runs the way the kind overlay runs the StatefulSet's pod (`database_spec`, read
  from the rendered manifests): its user, memory limit, read-only root filesystem with the pod's emptyDirs as
  tmpfs, PGDATA below the data volume's mount. The data is on a named volume, the restart policy is `always`, and
  the port is published on 127.0.0.1 only. Databases, roles and migrations: `shop_devtools.provision`, as for the
  embedded server.
- The fault (`containers_db_fault.database_fault`): while customers check out, at a moment a payment is pending
  (its row committed, the provider's answer not yet recorded), the server's main process (the postmaster, PID 1
  of the container) is SIGKILLed from the host, as the OOM killer or a crashing node would. Every backend dies
  with it; the engine sees the container exit and starts it again (its restart policy), and PostgreSQL replays its
  WAL from the volume. `docker kill` would not do: the engine takes it for a manual stop and leaves the container
  down whatever its restart policy (Docker 20.10, checked).
- Measured (`containers_db_outage.outage_marks`, pure), by asking every service's `/ready` every 0.1 s and the
  database every 0.05 s: when the database refused connections, when the engine saw it exit and started it, when
  it accepted connections again (the outage), when each service turned unready and ready again, when all were
  ready (the recovery), and when the payments the crash left pending were finished (by the payment service's
  sweeper or a customer's retry).
- Checked (`containers_db_outage.outage_problems`): restarted by the engine (the same container, one restart
  more), each service that needs the database unready while it was down and ready after, storefront ready
  throughout, no payment pending from before the kill left, every payment finished before the kill still
  there with its status. Then (`containers_db_fault.check_volume_keeps_data`) the container is replaced by a new
  one on the same volume, as a rescheduled StatefulSet pod would be, and every payment must still be there: the
  data is on the volume, not in the container. The drill's invariants over all the checkouts are checked by the
  caller.
"""

import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from shop_devtools import images
from shop_devtools.engine import Engine, pod_constraints
from shop_devtools.pg import free_port
from shop_devtools.provision import provision
from shop_devtools.quantities import memory_bytes

CONTEXT = Path("load/postgres")
"""The image's build context (its Dockerfile and entry point), relative to the repository root."""
CONTAINER = "rs-e2e-postgres"
VOLUME = "rs-e2e-pgdata"
SERVER_PORT = 5432
STATEFULSET = "postgres"


def image_name(version: str) -> str:
    return images.image_name("postgres", version)


@dataclass(frozen=True)
class DatabaseSpec:
    """What the StatefulSet runs PostgreSQL with, as far as a container engine can apply it."""

    memory_limit_bytes: int
    run_as_user: int
    data_mount: str
    """Where the claim's volume is mounted."""
    pgdata: str
    tmpfs: dict[str, int | None]
    """The pod's emptyDir mounts: path → size limit in bytes."""


def database_spec(documents: Sequence[Mapping[str, Any]]) -> DatabaseSpec:
    """The database container's settings from rendered manifests (the `postgres` StatefulSet)."""
    statefulset = next(
        (d for d in documents if d.get("kind") == "StatefulSet" and d["metadata"]["name"] == STATEFULSET), None
    )
    if statefulset is None:
        raise ValueError(f"the rendered manifests have no StatefulSet {STATEFULSET!r}")
    pod = statefulset["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == STATEFULSET)
    claims = {t["metadata"]["name"] for t in statefulset["spec"].get("volumeClaimTemplates", [])}
    empty_dirs = {v["name"]: v["emptyDir"] for v in pod.get("volumes", []) if "emptyDir" in v}
    mounts = container.get("volumeMounts", [])
    data_mount = next(m["mountPath"] for m in mounts if m["name"] in claims)
    tmpfs = {
        m["mountPath"]: memory_bytes(str(limit)) if (limit := empty_dirs[m["name"]].get("sizeLimit")) else None
        for m in mounts
        if m["name"] in empty_dirs
    }
    env = {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}
    user = container.get("securityContext", {}).get("runAsUser") or pod.get("securityContext", {})["runAsUser"]
    return DatabaseSpec(
        memory_limit_bytes=memory_bytes(container["resources"]["limits"]["memory"]),
        run_as_user=int(user),
        data_mount=data_mount,
        pgdata=env.get("PGDATA", data_mount),
        tmpfs=tmpfs,
    )


def build_argv(*, image: str, base_image: str, context: Path, ca_bundle: Path | None, network: str | None) -> list[str]:
    """`docker build` of the database image (BuildKit), the way `shop_devtools.images` builds the services'."""
    argv = ["build", "--tag", image, "--build-arg", f"BASE_IMAGE={base_image}"]
    if ca_bundle is not None:
        argv += ["--secret", f"id=ca,src={ca_bundle}"]
    if network is not None:
        argv += ["--network", network]
    return [*argv, str(context)]


def run_argv(spec: DatabaseSpec, *, name: str, image: str, volume: str, port: int, password: str) -> list[str]:
    """`docker run` of the database: the pod's user, limits and mounts, the named volume, restarts, 127.0.0.1."""
    argv = [
        "run", "--detach", "--name", name,
        *pod_constraints(spec.run_as_user, spec.memory_limit_bytes),
        "--volume", f"{volume}:{spec.data_mount}",
        "--publish", f"127.0.0.1:{port}:{SERVER_PORT}",
        "--env", f"PGDATA={spec.pgdata}",
        "--env", f"POSTGRES_PASSWORD={password}",
    ]  # fmt: skip
    for path, size in spec.tmpfs.items():
        argv += ["--tmpfs", f"{path}:rw" + (f",size={size}" if size else "")]
    return [*argv, image]


@dataclass
class DatabaseContainer:
    """The run's PostgreSQL container and its volume."""

    engine: Engine
    spec: DatabaseSpec
    image: str
    name: str = CONTAINER
    volume: str = VOLUME
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    def run(self) -> None:
        argv = run_argv(
            self.spec, name=self.name, image=self.image, volume=self.volume, port=self.port, password=self.password
        )
        self.engine.docker(*argv)

    def start(self) -> None:
        """A new volume and the container on it; returns once the server accepts connections (initdb done)."""
        self.engine.docker("volume", "create", self.volume)
        self.run()
        seconds = self.wait_accepting()
        where = f"127.0.0.1:{self.port}, volume {self.volume}"
        print(f"e2e    | started postgres ({self.image}) on {where}, accepting after {seconds:.1f} s", flush=True)

    def accepting(self) -> bool:
        try:
            with psycopg.connect(self.admin_url(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def wait_accepting(self, timeout: float = 60) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.accepting():
                return time.monotonic() - started
            time.sleep(0.1)
        logs = self.engine.docker("logs", "--tail", "30", self.name, check=False)
        raise RuntimeError(f"postgres not accepting connections after {timeout}s:\n{logs.stdout}{logs.stderr}")

    def state(self) -> dict[str, Any]:
        """`docker inspect` of the container."""
        inspected: list[dict[str, Any]] = json.loads(self.engine.docker("inspect", self.name).stdout)
        return inspected[0]

    def server_pid(self) -> int:
        """The pid, on the host, of the container's main process: the postmaster."""
        pid = int(self.state()["State"]["Pid"])
        if pid <= 0:
            raise RuntimeError(f"{self.name} is not running")
        return pid

    def kill_server(self, pid: int) -> float:
        """SIGKILL to the server, from the host (not `docker kill`: see the module's docstring); returns when."""
        try:
            os.kill(pid, signal.SIGKILL)
        except PermissionError as exc:
            raise RuntimeError(f"killing PostgreSQL (pid {pid}, uid {self.spec.run_as_user}) needs root") from exc
        return time.time()

    def replace(self) -> float:
        """Removes the container (killing the server) and starts a new one on the same volume; returns the seconds
        until the new one accepted connections."""
        started = time.monotonic()
        self.engine.docker("rm", "--force", self.name)
        self.run()
        self.wait_accepting()
        return time.monotonic() - started

    def save_logs(self, path: Path) -> None:
        logs = self.engine.docker("logs", self.name, check=False)
        if logs.returncode == 0:
            path.write_text(logs.stdout + logs.stderr)

    def remove(self, logs_to: Path | None = None) -> None:
        """Removes the container and its volume, keeping the server's log in `logs_to`."""
        if logs_to is not None:
            self.save_logs(logs_to / "postgres.log")
        self.engine.docker("rm", "--force", "--volumes", self.name, check=False)
        self.engine.docker("volume", "rm", "--force", self.volume, check=False)


def build_image(engine: Engine, *, image: str, base_image: str, root: Path, ca_bundle: Path | None) -> None:
    print(f"e2e    | building {image} on {base_image}", flush=True)
    argv = build_argv(image=image, base_image=base_image, context=root / CONTEXT, ca_bundle=ca_bundle, network="host")
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    built = subprocess.run([engine.client, *argv], env=env, capture_output=True, text=True, timeout=900, check=False)
    if built.returncode != 0:
        tail = "\n".join((built.stdout + built.stderr).splitlines()[-40:])
        raise RuntimeError(f"building {image} failed (docker build exited {built.returncode}):\n{tail}")


@contextmanager
def container_postgres(database: DatabaseContainer, workdir: Path) -> Iterator[dict[str, str]]:
    """The database container started and provisioned (service name → database URL); removed at the end, with its
    volume, also on failure."""
    database.remove()  # a previous run's, if it was interrupted
    try:
        database.start()
        yield provision(database.admin_url())
    finally:
        database.remove(logs_to=workdir)


def check_hardening(database: DatabaseContainer) -> list[str]:
    """The database runs as the StatefulSet's user, on a read-only root filesystem."""
    problems = []
    uid = database.engine.docker("exec", database.name, "id", "-u", check=False).stdout.strip()
    if uid != str(database.spec.run_as_user) or uid == "0":
        problems.append(f"postgres runs as uid {uid!r}")
    if database.engine.docker("exec", database.name, "touch", "/probe-write", check=False).returncode == 0:
        problems.append("postgres can write its root filesystem")
    return problems
