"""The container proof's database fault: what the database holds (its payments, before and after), the SIGKILL
to PostgreSQL's server process at a moment a payment is pending, the watch of every service and of the
database until all are back (`database_fault`), and the replacement container on the same volume that must
still hold every payment (`check_volume_keeps_data`).
"""

import asyncio
import json
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
import psycopg

from shop_devtools.engine import Engine
from shop_load.containers.db import DatabaseContainer
from shop_load.containers.db_outage import DATABASE, Outage, Sample, lost_or_changed, recovered

POLL_SECONDS = 0.1
"""How often each service's /ready is asked; the database is asked twice as often."""


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
