"""What the recovery page makes of successive looks: the timeline of changes and the checkout counts, with each
replica's counters starting over when it does (a restarted process counts from zero)."""

import asyncio
import socket
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from shop_storefront.recovery.sources import Addresses, Listing
from shop_storefront.recovery.watch import SEEN_RESTART, Replica, Watch, database


class Nowhere:
    target = "make run"

    async def listing(self) -> Listing:
        return Listing([])


@pytest.fixture
async def watch() -> AsyncIterator[Watch]:
    async with aiohttp.ClientSession() as session:
        yield Watch(Nowhere(), session, failures=lambda: 0, clock=lambda: 0.0)


def payment(name: str, started_at: float, captured: int, **changes: Any) -> Replica:
    fields: dict[str, Any] = {"restarts": 0, "last_reason": "", "live": True, "ready": True, "started_at": started_at}
    fields |= {"payments": {"captured": captured, "declined": 0}, "injections": {"leak": 0}} | changes
    return Replica(name, "payment", "", **fields)


def looks(watch: Watch, *rounds: Iterable[Replica]) -> dict[str, Any]:
    snapshot: dict[str, Any] = {}
    for second, replicas in enumerate(rounds):
        snapshot = watch.record(Listing([]), list(replicas), float(second))
    return snapshot


def kinds(snapshot: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(event["replica"], event["kind"], event["detail"]) for event in snapshot["timeline"]]


def test_counts_survive_a_restart_and_a_counter_that_went_down(watch: Watch) -> None:
    snapshot = looks(
        watch,
        [payment("payment-1", 100, 10), payment("payment-2", 100, 7)],
        [payment("payment-1", 100, 15), payment("payment-2", 100, 9)],  # +5, +2
        [payment("payment-1", 200, 3), payment("payment-2", 100, 9)],  # a new process: +3
        [payment("payment-1", 200, 4), payment("payment-2", 100, 1)],  # +1; went down: counted afresh, +1
    )
    assert snapshot["checkouts"]["captured"] == 12
    assert [point[1] for point in snapshot["checkouts"]["series"]] == [7.0, 3.0, 2.0]
    assert snapshot["checkouts"]["rate_per_second"] == 4.0


def test_the_timeline_tells_a_leak_from_injection_to_ready_again(watch: Watch) -> None:
    healthy = payment("payment-1", 100, 0)
    leaking = replace(healthy, injections={"leak": 1})
    over = replace(leaking, live=False, live_detail="over budget", ready=False, ready_detail="over budget")
    restarted = payment("payment-1", 300, 0, restarts=1, last_reason="failed liveness", ready=False)
    snapshot = looks(watch, [healthy], [leaking], [over], [over], [restarted], [replace(restarted, ready=True)])
    assert kinds(snapshot) == [
        ("payment-1", "fault injected", "leak"),
        ("payment-1", "liveness failing", "over budget"),
        ("payment-1", "unready", "over budget"),
        ("payment-1", "restarted", "failed liveness"),
        ("payment-1", "ready again", ""),
    ]


def test_where_restarts_are_not_counted_a_new_process_is_one(watch: Watch) -> None:
    first = payment("payment@10.0.0.7", 100, 0, restarts=None)
    snapshot = looks(watch, [first], [replace(first, started_at=500.0)], [])
    assert [kind for _, kind, _ in kinds(snapshot)] == ["restarted", "gone"]


def test_a_new_process_after_a_look_that_found_none_is_a_restart_and_counted(watch: Watch) -> None:
    """Under compose the OOM-killed replica answers nothing for a second before the engine's new process does (seen
    on real containers: the page told "unready" and "ready again" and no restart). Restarts seen are counted."""
    first = payment("payment@10.0.0.7", 100, 0, restarts=None)
    down = replace(first, live=False, live_detail="not answering", ready=False, ready_detail="not answering")
    down = replace(down, started_at=None, payments={})
    snapshot = looks(watch, [first], [down], [replace(first, started_at=500.0)], [replace(first, started_at=900.0)])
    assert kinds(snapshot) == [
        ("payment@10.0.0.7", "liveness failing", "not answering"),
        ("payment@10.0.0.7", "unready", "not answering"),
        ("payment@10.0.0.7", "restarted", SEEN_RESTART),
        ("payment@10.0.0.7", "ready again", ""),
        ("payment@10.0.0.7", "restarted", SEEN_RESTART),
    ]
    (shown,) = snapshot["replicas"]
    assert (shown["restarts"], shown["last_reason"]) == (2, SEEN_RESTART)


def test_a_replica_that_answered_nothing_for_a_while_is_the_same_process_after(watch: Watch) -> None:
    """A hang: the looks time out, then the same process answers again, its injection counter as before the gap.
    No restart, and the hang is not told a second time."""
    hung = payment("payment@10.0.0.7", 100, 0, restarts=None, injections={"hang": 1})
    silent = replace(hung, live=False, ready=False, started_at=None, payments={}, injections={})
    snapshot = looks(watch, [hung], [silent], [hung])
    assert [kind for _, kind, _ in kinds(snapshot)] == ["liveness failing", "unready", "ready again"]
    assert snapshot["replicas"][0]["restarts"] is None


def test_a_fault_the_page_injected_is_told_once(watch: Watch) -> None:
    healthy = payment("payment-2", 100, 0)
    looks(watch, [healthy])
    watch.note("payment-2", "fault injected", "leak")
    snapshot = watch.record(Listing([]), [replace(healthy, injections={"leak": 1})], 5.0)
    assert [(kind, by) for kind, by in ((e["kind"], e["by"]) for e in snapshot["timeline"])] == [
        ("fault injected", "page")
    ]


def test_the_database_is_down_when_a_service_says_so_or_its_pod_is_not_ready() -> None:
    catalog = Replica("catalog", "catalog", "", 0, "", ready=True)
    assert database([catalog])["state"] == "up"
    unavailable = replace(catalog, ready=False, ready_detail="database unavailable (OperationalError)")
    assert database([unavailable]) == {"state": "down", "detail": "catalog: database unavailable (OperationalError)"}
    pod = Replica("postgres-0", "postgres", "terminating", 0, "", ready=False)
    assert database([catalog, pod])["state"] == "down"
    assert database([])["state"] == "unknown"


async def test_behind_a_name_that_resolves_to_several_addresses_each_is_a_replica(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Compose's DNS answers a service's name with every replica's address (the resolver stands in for it here)."""
    answers = {"payment": ["172.18.0.5", "172.18.0.4"], "catalog": ["172.18.0.3"], "users": []}

    async def resolve(self: object, host: str, port: int, **_: object) -> list[tuple[Any, ...]]:
        if not answers[host]:
            raise OSError("no such host")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in answers[host]]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", resolve)
    urls = {"payment": ["http://payment:8083"], "catalog": ["http://catalog:8081"], "users": ["http://users:8082"]}
    listing = await Addresses(urls).listing()
    assert [(r.name, r.service, r.url) for r in listing.replicas] == [
        ("payment@172.18.0.4", "payment", "http://172.18.0.4:8083"),
        ("payment@172.18.0.5", "payment", "http://172.18.0.5:8083"),
        ("catalog", "catalog", "http://catalog:8081"),
        ("users", "users", "http://users:8082"),
    ]
