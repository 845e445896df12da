"""The drill's target on the shop in containers (`shop_load.targets.container_shop`): a container engine restarts
what dies, as the kubelet would, and enforces the memory limit with the kernel's OOM killer.

- leak, crash, hang: sent to payment-a's chaos endpoint, as locally. A leak grows fast enough to reach the
  container's memory limit: the kernel OOM-kills it and the engine starts it again. A crash ends the process and the
  engine starts it again; a hang ends by itself (the engine restarts a container that exits, not one that hangs).
- database: at a moment a payment is pending (its row committed, the provider's answer not yet recorded), the
  database container's main process, PostgreSQL's server, is SIGKILLed from the host, as the OOM killer or a
  failing node would (`docker kill` would not do: the engine takes it for a manual stop and leaves the container
  down, whatever its restart policy). The engine starts it again and PostgreSQL replays its WAL from the volume.

What is seen: the engine's events of the faulted container (`docker events`: oom, die, start, health), every
service's /healthz and /ready polled as locally (`LocalPayment`), and for the database fault the database itself
(connections, and payments from before the kill still pending). What only containers show is checked after the drill's
invariants (`checks`): the OOM kill and the engine's restart, the restarted database with every service back and every
payment kept, a new database container on the volume finding every payment, the provider charging each payment once,
and every container running as its pod would (its user, a read-only root).
"""

import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import psycopg

from shop_devtools.engine import Engine
from shop_load.core.drill_args import DrillError
from shop_load.core.records import InvariantResult, Mark, judged
from shop_load.report.timeline import first_mark
from shop_load.targets.container_shop import DATABASE, SERVICE_OF, ContainerShop, container, say
from shop_load.targets.local import LocalPayment
from shop_load.targets.target import Clock, CredentialKeeper, Target

VICTIM = "payment-a"
# The containers that are unready while the database is down; storefront has no database and stays ready.
NEEDS_DATABASE = ("catalog", "users", "payment-a", "payment-b")
ENGINE_MARKS = {"oom": "oom_killed", "die": "terminated", "start": "restarted"}
DATABASE_POLL_SECONDS = 0.1
RECOVERY_WAIT_SECONDS = 30.0


def payments(url: str) -> dict[str, str]:
    """Every payment: id → status."""
    with psycopg.connect(url, connect_timeout=5) as conn:
        return {str(row[0]): str(row[1]) for row in conn.execute("SELECT id::text, status FROM payments")}


def lost_or_changed(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """Finished payments of `before` that `after` lacks or holds with another status."""
    finished = sorted((key, status) for key, status in before.items() if status != "pending")
    gone = [f"payment {key} ({status}) is gone" for key, status in finished if key not in after]
    changed = [f"payment {key} was {was}, is now {after[key]}" for key, was in finished if after.get(key, was) != was]
    return gone + changed


def steps(marks: Sequence[Mark], pod: str, *kinds: str, chained: bool = False) -> dict[str, float | None]:
    """Seconds after the injection of each step's first mark (`chained`: each after the step before)."""
    since, taken = first_mark(marks, "injected", pod=pod), {}
    t = since.t if since else math.inf
    for kind in kinds:
        mark = first_mark(marks, kind, after=t, pod=pod)
        taken[kind] = None if mark is None or since is None else round(mark.t - since.t, 2)
        t = mark.t if mark and chained else t
    return taken


def missing(taken: Mapping[str, float | None], pod: str) -> list[str]:
    return [f"{pod}: no {kind.replace('_', ' ')} after the injection" for kind, t in taken.items() if t is None]


def shown(taken: Mapping[str, float | None]) -> str:
    return ", ".join(f"{kind.replace('_', ' ')} +{t:.2f} s" for kind, t in taken.items() if t is not None)


def restart_check(fault: str, marks: Sequence[Mark], restarts: int) -> InvariantResult:
    """A leak ends in the kernel's OOM kill at the memory limit, a crash in an exit; the engine starts the container
    again (its RestartCount grows) and it is ready again."""
    killed = "oom_killed" if fault == "leak" else "terminated"
    taken = steps(marks, VICTIM, killed, "restarted", "ready_again", chained=True)
    problems = missing(taken, VICTIM) + ([] if restarts >= 1 else [f"the engine counts {restarts} restarts"])
    how = "OOM-killed by the kernel" if fault == "leak" else "exited"
    detail = f"{shown(taken)} after the injection; RestartCount +{restarts}"
    return judged("killed_and_restarted", f"{how}, restarted by the engine, ready again", problems, detail)


def outage_check(
    marks: Sequence[Mark], restarts: int, same_container: bool, before: Mapping[str, str], after: Mapping[str, str]
) -> InvariantResult:
    """The engine restarted the database container it was (not a new one), once; every service that needs it was
    unready while it was down and ready after, storefront throughout; the payments the kill left pending were
    finished, and every payment finished before the kill is there with its status."""
    taken = steps(marks, DATABASE, "unready", "terminated", "restarted", "ready_again", "pending_finished")
    problems = missing(taken, DATABASE) + ([] if same_container else ["the container was replaced, not restarted"])
    problems += [] if restarts == 1 else [f"the engine restarted the database {restarts} times: expected once"]
    killed, accepting = first_mark(marks, "injected", pod=DATABASE), first_mark(marks, "ready_again", pod=DATABASE)
    t, up = killed.t if killed else math.inf, accepting.t if accepting else math.inf
    started = first_mark(marks, "restarted", after=t, pod=DATABASE)
    back = []
    for name in NEEDS_DATABASE:
        seen = [m for m in marks if m.pod == name and m.kind in {"unready", "ready_again"}]
        was = [m for m in seen if m.t <= t][-1:]  # unready already when the database was killed (a slow answer)
        down = [m for m in was + [m for m in seen if t < m.t <= up] if m.kind == "unready"]
        # Ready again after its own unready and after the engine started the server: not necessarily after the
        # drill's own connection got in (`up`), a poll that is as late as the services' probes under load.
        since = max(down[0].t if down else t, started.t if started else t)
        if not down:
            problems.append(f"{name} stayed ready while the database was down")
        elif (ready := first_mark(seen, "ready_again", after=since)) is None:
            last = f"{seen[-1].kind.replace('_', ' ')} +{seen[-1].t - t:.2f} s: {seen[-1].detail}"
            problems.append(f"{name} never became ready again (last seen {last})")
        else:
            back.append(ready.t - t)
    if any(
        m.pod == "storefront" and m.kind == "unready" and "answered 503" in m.detail for m in marks if t < m.t <= up
    ):
        problems.append("storefront answered unready while the database was down, though it needs none")
    problems += lost_or_changed(before, after)
    kept = sum(status != "pending" for status in before.values())
    detail = f"{shown(taken)}; every service ready again +{max(back, default=0):.2f} s; {kept} finished payments kept"
    return judged("database_outage", "restarted by the engine, services back, no payment lost", problems, detail)


class ContainerTarget(Target):
    """payment-a for the chaos faults, PostgreSQL's container for the database fault; every service's probes."""

    def __init__(self, shop: ContainerShop, fault: str, clock: Clock, credentials: CredentialKeeper) -> None:
        if fault == "rollout":
            raise DrillError("--fault rollout: the container engine has no rollout (a cluster or make run has one)")
        self.mode, self.shop, self.fault, self.clock, self.credentials = "containers", shop, fault, clock, credentials
        name = DATABASE if fault == "database" else VICTIM
        self.name, self.container, self.url, self.notes = name, container(name), shop.url("storefront"), []
        self.engine, self.database = Engine(shop.client), shop.database_urls["payment"]
        watched = SERVICE_OF if fault == "database" else [VICTIM]
        self.probes = {name: LocalPayment(shop.url(name), shop.chaos_token, clock, name) for name in watched}
        self.seen: list[Mark] = []
        self.before, self.payments_before = self.inspect(), dict[str, str]()
        self.killed_at: float | None = None
        self.counted: int | None = None  # the restarts, counted before the volume check replaces the container
        self.stop_event = asyncio.Event()
        watch = ["events", "--filter", f"container={self.container}", "--format", "{{json .}}"]
        self.events = subprocess.Popen([self.engine.client, *watch], stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._engine_events, daemon=True).start()
        self.following = asyncio.create_task(self._follow())

    def inspect(self) -> dict[str, Any]:
        inspected: list[dict[str, Any]] = json.loads(self.engine.docker("inspect", self.container).stdout)
        return inspected[0]

    def _engine_events(self) -> None:
        for event in map(json.loads, self.events.stdout or []):
            if kind := ENGINE_MARKS.get(event.get("status", "")):
                code = event.get("Actor", {}).get("Attributes", {}).get("exitCode")
                detail = f"docker events: {event['status']}" + (f", exit code {code}" if code else "")
                self.seen.append(Mark(self.clock() - (time.time() - event["timeNano"] / 1e9), kind, self.name, detail))

    async def _follow(self) -> None:
        async with httpx.AsyncClient() as client:
            watching = [probe.watch(client, self.stop_event) for probe in self.probes.values()]
            await asyncio.gather(*watching, *([self._watch_database()] if self.fault == "database" else []))

    async def _watch_database(self) -> None:
        """After the kill: when the database refuses and accepts connections, and when no payment from before the
        kill is pending any more."""
        query = "SELECT count(*) FROM payments WHERE status = 'pending' AND created_at < to_timestamp(%s)"
        accepting, finished, conn = True, False, None
        while not self.stop_event.is_set():
            if self.killed_at is not None:
                pending = None
                try:
                    conn = conn or await psycopg.AsyncConnection.connect(self.database, autocommit=True)
                    pending = (await (await conn.execute(query, (self.killed_at,))).fetchall())[0][0]
                except psycopg.Error:
                    conn = None
                if accepting != (pending is not None):
                    accepting = not accepting
                    said = "accepts connections" if accepting else "refuses connections"
                    self.seen.append(Mark(self.clock(), "ready_again" if accepting else "unready", DATABASE, said))
                if pending == 0 and not finished:
                    finished = True
                    self.seen.append(Mark(self.clock(), "pending_finished", DATABASE, "none pending from before"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), DATABASE_POLL_SECONDS)
        if conn is not None:
            await conn.close()

    def _kill_while_pending(self, within: float = 10.0) -> tuple[int, int]:
        """SIGKILLs the server once a payment is pending (or after `within` seconds); its pid and the pending count."""
        pid, give_up_at = int(self.before["State"]["Pid"]), time.monotonic() + within
        self.payments_before = payments(self.database)
        with psycopg.connect(self.database, autocommit=True) as conn:
            query = "SELECT count(*) FROM payments WHERE status = 'pending'"
            while not (pending := conn.execute(query).fetchall()[0][0]) and time.monotonic() < give_up_at:
                time.sleep(0.005)
        try:
            os.kill(pid, signal.SIGKILL)
        except PermissionError:
            raise DrillError(f"killing PostgreSQL (pid {pid}, another user's) needs root") from None
        self.killed_at = time.time()
        return pid, pending

    async def inject(self, client: httpx.AsyncClient, fault: str, body: Mapping[str, Any] | None) -> None:
        if fault != "database":
            await self.probes[VICTIM].inject(client, fault, body)  # marked on its probe's marks
            return
        pid, pending = await asyncio.to_thread(self._kill_while_pending)
        detail = f"SIGKILL to PostgreSQL's server (pid {pid} on the host), {pending} payment(s) pending"
        self.seen.append(Mark(self.clock() - (time.time() - (self.killed_at or 0)), "injected", DATABASE, detail))

    def marks(self) -> list[Mark]:
        return sorted([*self.seen, *(m for probe in self.probes.values() for m in probe.marks)], key=lambda m: m.t)

    def recovered(self) -> bool:
        marks = self.marks()
        if self.fault == "database":
            done = all(first_mark(marks, kind, pod=DATABASE) for kind in ("ready_again", "pending_finished"))
            return done and all(probe.tracker.ready for probe in self.probes.values())
        restarted = first_mark(marks, "restarted", pod=VICTIM)
        return restarted is not None and first_mark(marks, "ready_again", after=restarted.t, pod=VICTIM) is not None

    def restarts(self) -> int:
        """Restarts of the faulted container since the drill began, as the engine counts them (RestartCount)."""
        if self.counted is None:
            return int(self.inspect()["RestartCount"]) - int(self.before["RestartCount"])
        return self.counted

    def status(self) -> str:
        unready = [name for name, probe in self.probes.items() if not probe.tracker.ready]
        return f"{self.name}: restarts {sum(m.kind == 'restarted' for m in self.seen)} | unready: {unready or 'none'}"

    async def finish(self, client: httpx.AsyncClient, *, wait: bool = True) -> None:
        """A leak that did not end in a restart is cleared; then every container is awaited until ready."""
        if self.fault == "leak" and first_mark(self.marks(), "restarted", pod=VICTIM) is None:
            await self.probes[VICTIM].clear(client)
            self.notes.append(f"{VICTIM} was not restarted within the fault phase; the drill cleared its fault.")
        if self.fault == "hang":
            self.notes.append("The engine restarts a container that exits, not one that hangs: it ended by itself.")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RECOVERY_WAIT_SECONDS if wait else 0):
                for probe in self.probes.values():
                    await probe.ready_event.wait()

    def stop(self) -> None:
        self.stop_event.set()
        if self.events.poll() is None:
            self.events.terminate()
            self.events.wait(5)

    async def checks(self) -> list[InvariantResult]:
        """What only containers show, checked once the drill's invariants were."""
        found = [await asyncio.to_thread(self.hardening), await asyncio.to_thread(self.provider_books)]
        if self.fault in {"leak", "crash"}:
            return [restart_check(self.fault, self.marks(), self.restarts()), *found]
        if self.fault != "database":
            return found
        same, self.counted = self.inspect()["Id"] == self.before["Id"], self.restarts()
        after = await asyncio.to_thread(payments, self.database)
        outage = outage_check(self.marks(), self.counted, same, self.payments_before, after)
        return [outage, await asyncio.to_thread(self.volume_keeps_data), *found]

    def volume_keeps_data(self) -> InvariantResult:
        """A new database container on the volume, as a rescheduled StatefulSet pod reattaches its claim, finds
        every payment: the data is on the volume, not in the container."""
        before, started, after = payments(self.database), time.monotonic(), None
        say(f"replacing the {DATABASE} container by a new one on its volume")
        self.engine.docker("rm", "--force", container(DATABASE))
        self.engine.docker(*self.shop.database_argv, env={"POSTGRES_PASSWORD": self.shop.database_password})
        while after is None and time.monotonic() - started < 60:
            with contextlib.suppress(psycopg.Error):
                after = payments(self.database)
            time.sleep(0.2)
        problems = lost_or_changed(before, after) if after is not None else ["the new container never answered"]
        detail = f"{len(after or {})}/{len(before)} payments found, accepting after {time.monotonic() - started:.1f} s"
        return judged("volume_keeps_payments", "a new container on the volume finds every payment", problems, detail)

    def provider_books(self) -> InvariantResult:
        """Below the API: no payment left pending, and the provider charged each payment once, as it was recorded."""
        with psycopg.connect(self.database) as conn:
            rows = conn.execute(
                "SELECT p.id::text, p.status, c.outcome, p.amount_cents = c.amount_cents"
                " FROM payments p LEFT JOIN provider_charges c ON c.payment_id = p.id"
            ).fetchall()
        books = {("captured", "approved", True), ("declined", "declined", True)}
        problems = [f"payment {r[0]} is {r[1]}, the provider says {r[2]}" for r in rows if tuple(r[1:]) not in books]
        detail = f"{len(rows)} payments, each charged once as recorded"
        return judged("provider_books", "the provider charged each payment once, as recorded", problems, detail)

    def hardening(self) -> InvariantResult:
        """Every container runs as its pod's non-root user, on a read-only root filesystem."""
        problems = []
        for name, uid in self.shop.users.items():
            probe = "id -u; touch /probe-write 2>/dev/null && echo writable"
            seen = self.engine.docker("exec", container(name), "sh", "-c", probe, check=False).stdout.split()
            if seen[:1] != [str(uid)] or uid == 0:
                problems.append(f"{name} runs as uid {' '.join(seen[:1])!r}, not {uid}")
            if "writable" in seen:
                problems.append(f"{name} can write its root filesystem")
        detail = f"{len(self.shop.users)} containers as their pods' users, read-only"
        return judged("containers_hardened", "every container as its pod: non-root, read-only root", problems, detail)
