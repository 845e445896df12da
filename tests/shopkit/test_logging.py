"""What the services print, as `configure_logging` configures them in production: one INFO line per request (the
access line), business events at DEBUG, failures at WARNING or above, every request's lines with its request id."""

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import structlog

from shopkit.logging import configure_logging
from tests.conftest import Shop, register_and_login
from tests.payment.test_payments import APPROVED

Printed = Callable[[str], Callable[[], list[dict[str, Any]]]]
"""Configures logging at a level, JSON to stderr; returns what reads (and consumes) the lines printed since."""


@pytest.fixture
def printed(capsys: pytest.CaptureFixture[str]) -> Iterator[Printed]:
    """Logging as a service configures it, undone afterwards: the other tests see the configuration they had."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "alembic.runtime.migration")
    loggers = [logging.getLogger(name) for name in names]
    states = [(each.handlers[:], each.filters[:], each.level, each.propagate, each.disabled) for each in loggers]
    saved = structlog.get_config()

    def configure(at: str) -> Callable[[], list[dict[str, Any]]]:
        configure_logging(level=at, json=True)
        structlog.configure(cache_logger_on_first_use=False)  # the loggers must not keep this configuration
        capsys.readouterr()
        return lambda: [json.loads(line) for line in capsys.readouterr().err.splitlines()]

    yield configure
    structlog.configure(**saved)
    for each, (handlers, filters, level, propagate, disabled) in zip(loggers, states, strict=True):
        each.handlers[:], each.filters[:], each.propagate, each.disabled = handlers, filters, propagate, disabled
        each.setLevel(level)


async def customer(shop: Shop) -> "Customer":
    """A customer who checked out once already: the first checkout also fetches users' keys, a request of its own."""
    sku = (await shop.catalog.get("/products")).json()["items"][0]["sku"]
    body = {"items": [{"sku": sku, "quantity": 1}], "card_number": APPROVED}
    ready = Customer(await register_and_login(shop.users), body)
    assert (await ready.checkout(shop)).status_code == 201
    return ready


@dataclass
class Customer:
    auth: dict[str, str]
    body: dict[str, Any]

    async def checkout(self, shop: Shop) -> httpx.Response:
        headers = {**self.auth, "Idempotency-Key": str(uuid.uuid4())}
        return await shop.storefront.post("/api/payments", json=self.body, headers=headers)


def request_lines(lines: list[dict[str, Any]], level: str) -> list[dict[str, Any]]:
    """The lines at `level` logged while a request was served (background tasks bind no request id)."""
    return [line for line in lines if line["level"] == level and "request_id" in line]


async def test_a_checkout_prints_one_info_line_per_request_it_crosses(shop: Shop, printed: Printed) -> None:
    buyer = await customer(shop)
    read = printed("info")

    paid = await buyer.checkout(shop)

    assert paid.status_code == 201, paid.text
    info = request_lines(read(), "info")
    assert {line["event"] for line in info} == {"request"}, info
    routes = sorted(re.sub("/[0-9a-f-]{36}", "/{id}", line["path"]) for line in info)
    assert routes == ["/api/payments", "/payments", "/reservations", "/reservations/{id}/commit"]


async def test_its_business_events_are_at_debug_with_the_request_id(shop: Shop, printed: Printed) -> None:
    buyer = await customer(shop)
    read = printed("debug")

    paid = await buyer.checkout(shop)

    events = {line["event"]: line for line in request_lines(read(), "debug")}
    assert {"reservation_held", "payment_pending", "reservation_committed", "payment_captured"} <= set(events)
    assert events["payment_captured"]["payment_id"] == paid.json()["id"]
    assert events["payment_captured"]["request_id"] == paid.headers["x-request-id"]


async def test_a_failed_checkout_is_logged_as_a_warning_with_its_request_id(shop: Shop, printed: Printed) -> None:
    buyer = await customer(shop)
    read = printed("warning")
    shop.wires["payment"].faults = [httpx.ConnectError("refused")] * 3

    failed = await buyer.checkout(shop)

    assert failed.status_code >= 500
    warnings = request_lines(read(), "warning")
    assert "upstream_failed" in {line["event"] for line in warnings}, warnings
    assert {line["request_id"] for line in warnings} == {failed.headers["x-request-id"]}


async def test_a_readiness_check_prints_nothing_at_info(shop: Shop, printed: Printed) -> None:
    read = printed("info")

    for client in (shop.catalog, shop.payment):
        assert (await client.get("/ready")).status_code == 200

    assert request_lines(read(), "info") == []
