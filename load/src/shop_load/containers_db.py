"""The container proof's database: PostgreSQL in a container on a named volume, SIGKILLed under load.

The StatefulSet's claim, on a real container engine: open transactions survive through persistent storage.

- The image is built here (`load/postgres/Dockerfile`: Debian's PostgreSQL on the services' base image), since no
  registry may be reachable. It runs the way the kind overlay runs the StatefulSet's pod (`database_spec`, read
  from the rendered manifests): its user, memory limit, read-only root filesystem with the pod's emptyDirs as
  tmpfs, PGDATA below the data volume's mount. The data is on a named volume, the restart policy is `always`, and
  the port is published on 127.0.0.1 only. Databases, roles and migrations: `shop_devtools.provision`, as for the
  embedded server.
- The fault (`database_fault`): while customers check out, at a moment a payment is pending (its row committed,
  the provider's answer not yet recorded), the server's main process (the postmaster, PID 1 of the container) is
  SIGKILLed from the host, as the OOM killer or a crashing node would. Every backend dies with it; the engine sees
  the container exit and starts it again (its restart policy), and PostgreSQL replays its WAL from the volume.
  `docker kill` would not do: the engine takes it for a manual stop and leaves the container down whatever its
  restart policy (Docker 20.10, checked).
- Measured (`outage_marks`, pure), by asking every service's `/ready` every 0.1 s and the database every 0.05 s:
  when the database refused connections, when the engine saw it exit and started it, when it accepted
  connections again (the outage), when each service turned unready and ready again, when all were ready (the
  recovery), and when the payments the crash left pending were finished (by the payment service's sweeper or a
  customer's retry).
- Checked (`outage_problems`): restarted by the engine (the same container, one restart more), each service that
  needs the database unready while it was down and ready after, storefront ready throughout (SPEC §4), no
  payment pending from before the kill left, every payment finished before the kill still there with its status.
  Then (`check_volume_keeps_data`) the container is replaced by a new one on the same volume, as a rescheduled
  StatefulSet pod would be, and every payment must still be there: the data is on the volume, not in the
  container. The drill's invariants over all the checkouts are checked by the caller.
"""

import asyncio
import json
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from shop_devtools.engine import Engine
from shop_devtools.images import REPOSITORY
from shop_devtools.pg import free_port
from shop_devtools.provision import provision
from shop_devtools.quantities import memory_bytes
from shop_load.report import Checkout

CONTEXT = Path("load/postgres")
"""The image's build context (its Dockerfile and entry point), relative to the repository root."""
CONTAINER = "rs-e2e-postgres"
VOLUME = "rs-e2e-pgdata"
SERVER_PORT = 5432
STATEFULSET = "postgres"
POLL_SECONDS = 0.1
"""How often each service's /ready is asked; the database is asked twice as often."""
DATABASE = "database"
"""The database's own target in the samples, beside the services' names."""
ANSWERED = frozenset({"captured", "declined", "out_of_stock"})


def image_name(version: str) -> str:
    return f"{REPOSITORY}/postgres:{version}"


# --- the container ----------------------------------------------------------------------------------------------


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
        "--user", f"{spec.run_as_user}:{spec.run_as_user}",
        "--read-only",
        "--memory", str(spec.memory_limit_bytes), "--memory-swap", str(spec.memory_limit_bytes),
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--restart", "always",
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


# --- what the database holds ------------------------------------------------------------------------------------


def payments(payment_url: str) -> dict[str, str]:
    """Every payment: id → status."""
    with psycopg.connect(payment_url, connect_timeout=5) as conn:
        return {str(row[0]): str(row[1]) for row in conn.execute("SELECT id::text, status FROM payments")}


def kill_while_pending(database: DatabaseContainer, payment_url: str, within: float = 10.0) -> tuple[int, int, float]:
    """SIGKILLs the server the moment a payment is pending (its row committed, the provider's answer not yet
    recorded), so that the crash cuts a payment in the middle; gives up waiting for one after `within` seconds.
    Returns the server's pid, the payments pending just before the kill, and the wall clock of the kill."""
    pid = database.server_pid()
    give_up_at = time.monotonic() + within
    with psycopg.connect(payment_url, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT count(*) FROM payments WHERE status = 'pending'").fetchone()
            pending = int(row[0]) if row else 0
            if pending or time.monotonic() > give_up_at:
                break
            time.sleep(0.005)
    return pid, pending, database.kill_server(pid)


def lost_or_changed(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """Finished payments of `before` that `after` lacks or holds with another status."""
    problems = []
    for payment_id, status in sorted(before.items()):
        if status == "pending":
            continue
        if payment_id not in after:
            problems.append(f"payment {payment_id} ({status}) is gone")
        elif after[payment_id] != status:
            problems.append(f"payment {payment_id} was {status}, is now {after[payment_id]}")
    return problems


def check_volume_keeps_data(
    database: DatabaseContainer, payment_url: str, logs_to: Path
) -> tuple[dict[str, Any], list[str]]:
    """A new container on the volume (a rescheduled pod reattaching its claim) finds every payment. The log of the
    container it replaces (the crash and its recovery) is kept in `logs_to`."""
    before = payments(payment_url)
    database.save_logs(logs_to / "postgres-killed.log")
    print(f"e2e    | replacing the postgres container by a new one on volume {database.volume}", flush=True)
    seconds = database.replace()
    after = payments(payment_url)
    problems = [f"new container on the volume: {p}" for p in lost_or_changed(before, after)]
    kept = sum(1 for payment_id, status in before.items() if after.get(payment_id) == status)
    return {"payments": len(before), "found": kept, "accepting_after_seconds": round(seconds, 2)}, problems


# --- the outage, observed ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One look at a target: a service's /ready (ok: 200) or the database (ok: it ran a query)."""

    at: float
    """Wall clock (time.time()), as the engine's events."""
    target: str
    ok: bool
    pending: int | None = None
    """The database's: payments created before the kill that are still pending."""


@dataclass(frozen=True)
class Transition:
    down: float | None
    """The first failing look at or after the kill."""
    up: float | None
    """The first passing look after `down`."""


@dataclass
class Outage:
    """What happened to the database and the services, as seen from outside."""

    killed: float | None = None
    """Wall clock of the SIGKILL."""
    clock_at_kill: float | None = None
    """The customers' clock (Checkout.t) at the SIGKILL."""
    pid: int | None = None
    samples: list[Sample] = field(default_factory=list)
    engine_events: list[tuple[float, str]] = field(default_factory=list)
    """(wall clock, action) of the container, from `docker events`: die, start, ..."""
    container_before: dict[str, Any] = field(default_factory=dict)
    container_after: dict[str, Any] = field(default_factory=dict)
    pending_at_kill: int = 0
    payments_before: dict[str, str] = field(default_factory=dict)
    """id → status just before the kill."""
    payments_after: dict[str, str] = field(default_factory=dict)
    """id → status once everything recovered."""


def transitions(samples: Sequence[Sample], since: float) -> dict[str, Transition]:
    """Per target, when it first failed at or after `since`, and when it first passed after that."""
    down: dict[str, float] = {}
    up: dict[str, float] = {}
    targets: list[str] = []
    for sample in sorted(samples, key=lambda s: s.at):
        if sample.target not in targets:
            targets.append(sample.target)
        if sample.at < since:
            continue
        if not sample.ok:
            down.setdefault(sample.target, sample.at)
        elif sample.target in down:
            up.setdefault(sample.target, sample.at)
    return {target: Transition(down.get(target), up.get(target)) for target in targets}


def pending_finished(samples: Sequence[Sample], since: float) -> tuple[int | None, float | None]:
    """How many payments from before the kill were pending when the database answered again, and when the first
    look found none left."""
    looks = sorted((s for s in samples if s.target == DATABASE and s.ok and s.at >= since), key=lambda s: s.at)
    if not looks:
        return None, None
    return looks[0].pending, next((s.at for s in looks if s.pending == 0), None)


def recovered(samples: Sequence[Sample], since: float, targets: Sequence[str]) -> bool:
    """The database answers with no payment from before the kill pending, and every target's latest look, taken
    after that, passed: time to stop watching."""
    database = transitions(samples, since).get(DATABASE)
    if database is None or database.up is None:
        return False
    _, done = pending_finished(samples, since)
    if done is None:
        return False
    latest: dict[str, Sample] = {}
    for sample in samples:
        if sample.target in targets and (sample.target not in latest or sample.at >= latest[sample.target].at):
            latest[sample.target] = sample
    return all(t in latest and latest[t].ok and latest[t].at > database.up for t in targets)


def first_event(events: Sequence[tuple[float, str]], action: str, since: float) -> float | None:
    return min((at for at, seen in events if seen == action and at >= since), default=None)


def outage_marks(outage: Outage, services: Sequence[str]) -> dict[str, float | None]:
    """Seconds after the kill of each step, in the order they should happen."""
    if outage.killed is None:
        return {}
    killed = outage.killed
    seen = transitions(outage.samples, killed)
    database = seen.get(DATABASE, Transition(None, None))
    _, pending_done = pending_finished(outage.samples, killed)
    marks: dict[str, float | None] = {
        "killed": killed,
        "database_refused": database.down,
        "engine_saw_exit": first_event(outage.engine_events, "die", killed),
        "engine_restarted": first_event(outage.engine_events, "start", killed),
        "database_accepting": database.up,
    }
    for name in services:
        marks[f"{name}_unready"] = seen.get(name, Transition(None, None)).down
    for name in services:
        marks[f"{name}_ready_again"] = seen.get(name, Transition(None, None)).up
    ready = [marks[f"{name}_ready_again"] for name in services]
    marks["all_ready_again"] = None if not ready or None in ready else max(r for r in ready if r is not None)
    marks["pending_finished"] = pending_done
    return {step: None if at is None else round(at - killed, 2) for step, at in marks.items()}


def outage_problems(outage: Outage, services: Sequence[str], stays_ready: Sequence[str]) -> list[str]:
    """What the outage must show: the engine restarted the database, the services that need it were unready while
    it was down and ready after, those that do not stayed ready, the crash's pending payments were finished, and
    nothing finished before the kill was lost."""
    if outage.killed is None:
        return ["the database was never killed"]
    marks = outage_marks(outage, services)
    seen = transitions(outage.samples, outage.killed)
    problems = []
    if marks["database_refused"] is None:
        problems.append("the database never refused a connection after the kill")
    if marks["database_accepting"] is None:
        problems.append("the database never accepted connections again")
    if marks["engine_saw_exit"] is None or marks["engine_restarted"] is None:
        problems.append("the engine did not report the database container's exit and start")
    before, after = outage.container_before, outage.container_after
    if before.get("id") != after.get("id"):
        problems.append("the database container was replaced, not restarted")
    if after.get("restart_count") != before.get("restart_count", 0) + 1:
        problems.append(
            f"the engine restarted the database {after.get('restart_count')} time(s) in all, "
            f"{before.get('restart_count')} before the kill: expected one restart more"
        )
    for name in services:
        if marks[f"{name}_unready"] is None:
            problems.append(f"{name} stayed ready while the database was down")
        elif marks[f"{name}_ready_again"] is None:
            problems.append(f"{name} never became ready again")
    for name in stays_ready:
        if (transition := seen.get(name)) is not None and transition.down is not None:
            problems.append(f"{name} turned unready, though it needs no database")
    left, _ = pending_finished(outage.samples, outage.killed)
    if left and marks["pending_finished"] is None:
        problems.append(f"{left} payment(s) pending since before the kill were never finished")
    problems += [f"after the restart: {p}" for p in lost_or_changed(outage.payments_before, outage.payments_after)]
    return problems


def outage_checkouts(checkouts: Sequence[Checkout], start: float, end: float) -> dict[str, Any]:
    """The checkouts the outage touched: started before everything was ready again and not answered before the kill
    (times on the customers' clock)."""
    touched = [c for c in checkouts if c.t <= end and (c.finished is None or c.finished >= start)]
    answered = [c for c in touched if c.outcome in ANSWERED]
    waits = [c.finished - c.t for c in answered if c.finished is not None]
    return {
        "touched": len(touched),
        "answered": len(answered),
        "retried": sum(1 for c in touched if c.attempts > 1),
        "gave_up": sum(1 for c in touched if c.outcome == "failed"),
        "longest_answer_seconds": round(max(waits), 2) if waits else None,
    }


def summarize_outage(
    outage: Outage, checkouts: Sequence[Checkout], services: Sequence[str], stays_ready: Sequence[str]
) -> dict[str, Any]:
    marks = outage_marks(outage, services)
    recovery = marks.get("all_ready_again")
    touched: dict[str, Any] = {}
    if outage.clock_at_kill is not None:
        end = outage.clock_at_kill + (recovery if recovery is not None else 0.0)
        touched = outage_checkouts(checkouts, outage.clock_at_kill, end)
    left, _ = pending_finished(outage.samples, outage.killed) if outage.killed is not None else (None, None)
    kept = lost_or_changed(outage.payments_before, outage.payments_after)
    finished_before = sum(1 for status in outage.payments_before.values() if status != "pending")
    return {
        "seconds_after_kill": marks,
        "outage_seconds": marks.get("database_accepting"),
        "recovery_seconds": recovery,
        "killed_pid": outage.pid,
        "restart_count": outage.container_after.get("restart_count"),
        "pending_at_kill": outage.pending_at_kill,
        "pending_when_back": left,
        "payments_before_kill": finished_before,
        "payments_kept": finished_before - len(kept),
        "checkouts": touched,
        "problems": outage_problems(outage, services, stays_ready),
    }


def print_outage_summary(report: Mapping[str, Any]) -> None:
    print("\ncontainer proof: PostgreSQL SIGKILLed under paced checkouts, restarted by the engine", flush=True)
    for step, seconds in report["seconds_after_kill"].items():
        print(f"  {step:<24} {'-' if seconds is None else f'+{seconds:.2f} s'}", flush=True)
    print(f"  {'outage':<24} {report['outage_seconds']} s (until the database accepted connections)", flush=True)
    print(f"  {'recovery':<24} {report['recovery_seconds']} s (until every service was ready)", flush=True)
    print(f"  {'restarts':<24} {report['restart_count']}", flush=True)
    print(
        f"  {'pending':<24} {report['pending_at_kill']} at the kill, {report['pending_when_back']} when it was back",
        flush=True,
    )
    touched = report["checkouts"]
    if touched:
        print(
            f"  {'checkouts':<24} {touched['answered']}/{touched['touched']} answered, {touched['retried']} retried, "
            f"longest {touched['longest_answer_seconds']} s",
            flush=True,
        )
    print(f"  {'kept':<24} {report['payments_kept']}/{report['payments_before_kill']} payments from before", flush=True)
    if volume := report.get("new_container"):
        print(
            f"  {'new container':<24} {volume['found']}/{volume['payments']} payments found on the volume "
            f"(accepting after {volume['accepting_after_seconds']} s)",
            flush=True,
        )
    for problem in report["problems"] or ["none: every check holds"]:
        print(f"  {'problem':<24} {problem}", flush=True)


# --- the fault --------------------------------------------------------------------------------------------------


class EngineEvents:
    """`docker events` of one container, as (wall clock, action) pairs, each also handed to `on_event` as it comes."""

    def __init__(self, engine: Engine, container: str, on_event: Callable[[float, str], None] | None = None) -> None:
        self.seen: list[tuple[float, str]] = []
        self.on_event = on_event
        self.process = subprocess.Popen(
            [engine.client, "events", "--filter", f"container={container}", "--format", "{{json .}}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            event = json.loads(line)
            at, action = event.get("timeNano", 0) / 1e9, event.get("status", "")
            self.seen.append((at, action))
            if self.on_event is not None:
                self.on_event(at, action)

    def stop(self) -> list[tuple[float, str]]:
        self.process.terminate()
        self.process.wait(5)
        return list(self.seen)


def container_state(inspected: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": inspected["Id"], "restart_count": inspected["RestartCount"], "running": inspected["State"]["Running"]}


async def _watch_service(
    client: httpx.AsyncClient, name: str, url: str, out: list[Sample], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        try:
            ok = (await client.get(url + "/ready", timeout=1)).status_code == 200
        except httpx.HTTPError:
            ok = False
        out.append(Sample(time.time(), name, ok))
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL_SECONDS)


async def _watch_database(payment_url: str, killed: float, out: list[Sample], stop: asyncio.Event) -> None:
    query = "SELECT count(*) FROM payments WHERE status = 'pending' AND created_at < to_timestamp(%s)"
    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(payment_url, connect_timeout=2) as conn:
                row = await (await conn.execute(query, (killed,))).fetchone()
            out.append(Sample(time.time(), DATABASE, True, int(row[0]) if row else None))
        except psycopg.Error:
            out.append(Sample(time.time(), DATABASE, False))
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL_SECONDS / 2)


async def database_fault(
    database: DatabaseContainer,
    *,
    payment_url: str,
    services: Mapping[str, str],
    clock: Callable[[], float],
    watch_for: float = 90,
) -> Outage:
    """SIGKILLs the database while the caller's customers go on checking out, and watches until it answers again
    with no payment of the crash left pending and every service ready (or `watch_for` seconds)."""
    outage = Outage()
    outage.payments_before = await asyncio.to_thread(payments, payment_url)
    outage.container_before = container_state(await asyncio.to_thread(database.state))
    events = EngineEvents(database.engine, database.name)
    await asyncio.sleep(0.5)  # `docker events` subscribed
    stop = asyncio.Event()
    outage.pid, outage.pending_at_kill, killed = await asyncio.to_thread(kill_while_pending, database, payment_url)
    outage.killed, outage.clock_at_kill = killed, clock() - (time.time() - killed)
    print(
        f"e2e    | SIGKILL to PostgreSQL's server process (pid {outage.pid} on the host), "
        f"{outage.pending_at_kill} payment(s) pending",
        flush=True,
    )
    async with httpx.AsyncClient() as client:
        watchers = [
            asyncio.create_task(_watch_service(client, name, url, outage.samples, stop))
            for name, url in services.items()
        ]
        watchers.append(asyncio.create_task(_watch_database(payment_url, killed, outage.samples, stop)))
        give_up_at = time.monotonic() + watch_for
        while time.monotonic() < give_up_at:
            if recovered(outage.samples, killed, list(services)):
                break
            await asyncio.sleep(0.2)
        stop.set()
        await asyncio.gather(*watchers)
    outage.engine_events = events.stop()
    outage.container_after = container_state(await asyncio.to_thread(database.state))
    outage.payments_after = await asyncio.to_thread(payments, payment_url)
    print(f"e2e    | database back and every service ready {time.time() - killed:.1f} s after the kill", flush=True)
    return outage
