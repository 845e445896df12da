"""Exactly once on real processes: a payment process SIGKILLed mid-flight loses nothing and charges nothing twice.

Two payment processes share the database; 30 checkouts start at once on one of them with a slow provider (500 ms);
it is killed with SIGKILL while they are in flight and a replacement is started. Customers who saw their request fail
retry with their key on the surviving process; some give up, and the sweeper must finish theirs.
"""

import asyncio
import signal
import time
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import AS_OPERATOR
from tests.process.conftest import ServiceProcess, StartService

pytestmark = pytest.mark.process

APPROVED, DECLINED = "4242424242424242", "4000000000000002"
SKUS = ["KB-ERGO-01", "MS-VERT-02", "HD-NC-04"]


async def login(client: httpx.AsyncClient, users: ServiceProcess) -> dict[str, str]:
    email, password = f"buyer-{uuid.uuid4().hex[:10]}@example.com", "kill-nine-proof"
    await client.post(f"{users.url}/users", json={"email": email, "password": password, "name": "Buyer"})
    token = (await client.post(f"{users.url}/tokens", json={"email": email, "password": password})).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def inventory_totals(catalog: ServiceProcess) -> dict[str, dict[str, int]]:
    return {row["sku"]: row for row in httpx.get(f"{catalog.url}/inventory", headers=AS_OPERATOR).json()}


async def test_sigkill_mid_flight_loses_nothing_and_charges_nothing_twice(
    start_service: StartService, database_urls: Mapping[str, str]
) -> None:
    catalog = start_service("catalog", DATABASE_URL=database_urls["catalog"])
    users = start_service("users", DATABASE_URL=database_urls["users"])
    payment_env = {
        "DATABASE_URL": database_urls["payment"],
        "PAYMENT_CATALOG_URL": catalog.url,
        "PAYMENT_USERS_URL": users.url,
        "PAYMENT_PROVIDER_LATENCY_MS": "500",
        "PAYMENT_PENDING_LEASE_SECONDS": "3",
    }
    victim, survivor = start_service("payment", **payment_env), start_service("payment", **payment_env)
    initial = inventory_totals(catalog)

    async with httpx.AsyncClient(timeout=10) as client:
        buyers = await asyncio.gather(*(login(client, users) for _ in range(10)))
        checkouts: list[dict[str, Any]] = [
            {
                "auth": buyers[i % 10],
                "key": f"checkout-{i}-{uuid.uuid4().hex[:6]}",
                "body": {
                    "items": [{"sku": SKUS[i % 3], "quantity": 1 + i % 2}],
                    "card_number": DECLINED if i % 7 == 0 else APPROVED,
                },
                "target": victim,  # all in flight on the process about to die; retries go to the survivor
                "gives_up": i % 6 == 0,
            }
            for i in range(30)
        ]
        answers: dict[str, int] = {}

        async def checkout(c: dict[str, Any]) -> None:
            headers = {**c["auth"], "Idempotency-Key": c["key"]}
            target: ServiceProcess = c["target"]
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    response = await client.post(f"{target.url}/payments", json=c["body"], headers=headers)
                    if response.status_code in (201, 402, 409):
                        answers[str(c["key"])] = response.status_code
                        return
                except httpx.HTTPError:
                    if c["gives_up"]:
                        return
                target = survivor  # the customer's retry lands on a healthy replica
                await asyncio.sleep(0.2)

        async def kill_mid_flight() -> ServiceProcess:
            """SIGKILL once payments are pending, i.e. between their row and the provider's answer."""
            async with await psycopg.AsyncConnection.connect(database_urls["payment"], autocommit=True) as conn:
                for _ in range(100):
                    cursor = await conn.execute("SELECT count(*) FROM payments WHERE status = 'pending'")
                    if (await cursor.fetchone() or (0,))[0] >= 6:
                        break
                    await asyncio.sleep(0.02)
            victim.process.send_signal(signal.SIGKILL)
            victim.process.wait(5)
            return start_service("payment", wait=False, **payment_env)

        killed_at = time.monotonic()
        killing = asyncio.create_task(kill_mid_flight())
        await asyncio.gather(*(checkout(c) for c in checkouts))
        replacement = await killing
    assert victim.process.returncode == -signal.SIGKILL

    # Within 15 s every key has exactly one payment, in a final state (retries or the sweeper finished them).
    with psycopg.connect(database_urls["payment"]) as conn:
        while True:
            pending = conn.execute("SELECT count(*) FROM payments WHERE status = 'pending'").fetchone()
            if pending == (0,) or time.monotonic() - killed_at > 15:
                break
            time.sleep(0.2)
        recovered_after = time.monotonic() - killed_at
        rows = conn.execute(
            "SELECT p.idempotency_key, p.status, p.amount_cents, c.outcome, c.amount_cents"
            " FROM payments p LEFT JOIN provider_charges c ON c.payment_id = p.id"
        ).fetchall()
        per_key = conn.execute("SELECT max(n) FROM (SELECT count(*) n FROM payments GROUP BY idempotency_key) k")
        assert per_key.fetchone() in ((1,), (None,))
    by_key = {key: (status, amount, outcome, charged) for key, status, amount, outcome, charged in rows}
    print(f"{len(answers)} customers answered, {len(rows)} payments, all final {recovered_after:.1f}s after the kill")

    assert pending == (0,), "payments still pending 15 s after the kill"
    for key, code in answers.items():  # every answer a customer saw is what is stored
        status = {201: "captured", 402: "declined"}.get(code)
        if status:
            assert by_key[key][0] == status
    for status, amount, outcome, charged in by_key.values():  # charged once, and as recorded
        assert (status, outcome) in {("captured", "approved"), ("declined", "declined")}
        assert amount == charged
    for c in checkouts:
        if not c["gives_up"]:
            assert c["key"] in answers, f"{c['key']} never got a final answer"

    final = inventory_totals(catalog)
    for sku, before in initial.items():
        after = final[sku]
        assert after["stock"] + after["sold"] + after["held"] == before["stock"] + before["sold"] + before["held"]
    sold = sum(final[s]["sold"] for s in SKUS)
    assert sold == sum(
        q
        for q in (c["body"]["items"][0]["quantity"] for c in checkouts if by_key.get(c["key"], ("",))[0] == "captured")
    )
    replacement.wait_ready()
    recovered: dict[str, float] = {}
    for process in (survivor, replacement):
        for line in httpx.get(f"{process.url}/metrics").text.splitlines():
            if line.startswith("shop_payments_recovered_total{"):
                by = line.split('by="')[1].split('"')[0]
                recovered[by] = recovered.get(by, 0) + float(line.rsplit(" ", 1)[1])
    print(f"pending payments of the killed process finished by: {recovered}")
    assert sum(recovered.values()) >= 1, "the kill did not catch any payment mid-flight"
