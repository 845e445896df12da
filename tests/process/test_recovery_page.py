"""The live recovery page (`/recovery`) in a real browser (Debian's chromium driven by Playwright) against `make run`
with its defaults: three payment replicas, each with its pod's memory budget, probed as the kubelet would.

The operator logs in, makes payment-1 leak from the page while customers check out, and watches it go unready,
be restarted for failing liveness and come back, while the other two take the checkouts. With RECOVERY_SCREENSHOT
set to a path, the page is saved there once the replica is ready again (`make recovery-screenshot`). Run both
browser tests with `make test-browser`; without a chromium on the machine this one skips too.
"""

import contextlib
import itertools
import os
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect, sync_playwright

from shop_devtools.credentials import OPERATOR, bearer, read_env_file
from shop_devtools.runstate import RunState
from tests.devtools import test_run
from tests.devtools.test_run import (
    Launch,
    Ports,
    bindable,
    launched,
    register_and_log_in,
    wait_for_banner,
    wait_for_products,
)
from tests.process.test_web_shop import APPROVED, CHROMIUM

pytestmark = pytest.mark.process
data_dir, ports = test_run.data_dir, test_run.ports
"""The launcher tests' fixtures: a data directory outside pytest's basetemp, free ports below the ephemeral range."""

REPLICAS = ("payment-1", "payment-2", "payment-3")
CHECKOUTS_PER_SECOND = 4
MAX_SERVER_ERRORS = 2
"""Checkouts answered 5xx while one replica of three leaks and is restarted: the others should take them all."""
SETTLE_MS = 30_000
"""From the login to every replica ready and checkouts counted on the page."""
RECOVERY_MS = 90_000
"""Each step of the recovery: the leak (8 MB/s) crosses the budget in seconds, then liveness fails 3 times 5 s
apart and the replica starts again; on a slow shared machine each step may take several times that."""
NOT_COUNTED = re.compile("^(\u2013|0\\.0)$")
"""What `#rate` shows before the page has counted a checkout: an en dash, or no rate yet."""


@dataclass
class Checkouts:
    """Steady checkouts through the storefront, as one customer paying for one unit at a time."""

    shop: str
    token: str
    skus: list[str]
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        started = time.monotonic()
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.shop, trust_env=False, timeout=10) as client:
            for n in itertools.count():
                if self.stop.wait(max(0.0, started + n / CHECKOUTS_PER_SECOND - time.monotonic())):
                    return
                body = {"items": [{"sku": self.skus[n % len(self.skus)], "quantity": 1}], "card_number": APPROVED}
                key = {"Idempotency-Key": f"recovery-page-{uuid.uuid4()}"}
                try:
                    answer = client.post("/api/payments", json=body, headers=headers | key)
                except httpx.HTTPError as exc:
                    self.unanswered.append(f"{time.monotonic() - started:.1f} s: {type(exc).__name__}")
                    continue
                self.statuses[answer.status_code] += 1
                if answer.status_code >= 500:
                    self.server_errors.append(f"{time.monotonic() - started:.1f} s: {answer.status_code} {answer.text}")


@contextlib.contextmanager
def checking_out(shop: str) -> Iterator[Checkouts]:
    products = httpx.get(f"{shop}/api/products?limit=100", timeout=10, trust_env=False).json()["items"]
    skus = [product["sku"] for product in products if product["stock"] > 0]
    assert skus, "the seeded shop has stock"
    checkouts = Checkouts(shop, register_and_log_in(shop), skus)
    worker = threading.Thread(target=checkouts.run, daemon=True)
    worker.start()
    try:
        yield checkouts
    finally:
        checkouts.stop.set()
        worker.join(timeout=15)


@contextlib.contextmanager
def browser_page(problems: list[str]) -> Iterator[Page]:
    assert CHROMIUM is not None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.on("console", lambda message: _console(message, problems))
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        try:
            yield page
        finally:
            browser.close()


def _console(message: ConsoleMessage, problems: list[str]) -> None:
    """Errors and warnings (a CSP violation is an error); chromium's hints about forms come as `verbose`."""
    if message.type in ("error", "warning"):
        problems.append(f"console {message.type}: {message.text}")


def assert_only_the_operator_gets_in(shop: str) -> None:
    customer = {"Authorization": f"Bearer {register_and_log_in(shop)}"}
    with httpx.Client(base_url=shop, trust_env=False, timeout=10) as client:
        assert client.get("/recovery/state").status_code == 401
        assert client.get("/recovery/state", headers=customer).status_code == 401
        assert client.post("/ops/chaos/payment-1/leak", headers=customer).status_code == 401


def log_in(page: Page, shop: str, credential: str) -> None:
    response = page.goto(f"{shop}/recovery")
    assert response is not None
    assert response.status == 200
    expect(page).to_have_url(f"{shop}/recovery/login")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page.locator("input[name=credential]").fill(credential)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{shop}/recovery")


def test_the_operator_watches_a_leaking_replica_restarted_for_failing_liveness_while_checkouts_go_on(
    data_dir: Path, ports: Ports
) -> None:
    if CHROMIUM is None:
        pytest.skip("no chromium: `apt-get install chromium` (Debian) or set CHROMIUM to a Chromium binary")
    payment = ports.services["payment"]
    if not all(bindable(payment + n) and payment + n not in ports.all for n in (1, 2)):
        pytest.skip("the ports after payment's are taken here")
    problems: list[str] = []
    with launched(data_dir, ports, PAYMENT_REPLICAS="3") as launch:
        wait_for_products(launch)
        wait_for_banner(launch)
        state = RunState.read(data_dir)
        assert state is not None
        assert [process.name for process in state.replicas("payment")] == list(REPLICAS)
        assert_only_the_operator_gets_in(launch.shop)
        operator = read_env_file(data_dir / "credentials.env")[OPERATOR]
        with checking_out(launch.shop) as checkouts, browser_page(problems) as page:
            log_in(page, launch.shop, operator)
            timings = watch_the_recovery(page, launch)
            rate = float(page.locator("#rate").inner_text())
            failed_at_gateway = page.locator("#failed").inner_text()
        assert launch.process.poll() is None, launch.log()
        chaos = httpx.post(f"{launch.shop}/ops/chaos/payment-2/clear", headers=bearer(operator), trust_env=False)
        assert chaos.status_code == 200, "the operator's credential opens the same door as the page's session"
    print(
        f"\nunready after {timings['unready']:.1f} s, restarted after {timings['restarted']:.1f} s, ready again "
        f"after {timings['ready again']:.1f} s (from the click); checkouts answered {dict(checkouts.statuses)}, "
        f"unanswered {len(checkouts.unanswered)}, the page's rate {rate}/s and failed at the gateway "
        f"{failed_at_gateway}; 5xx: {checkouts.server_errors[:5]}"
    )
    assert checkouts.statuses[201] > 0
    assert checkouts.unanswered == []
    assert len(checkouts.server_errors) <= MAX_SERVER_ERRORS, checkouts.server_errors
    assert rate > 0
    assert problems == [], "the page logged errors (a CSP violation is one)"


def watch_the_recovery(page: Page, launch: Launch) -> dict[str, float]:
    """Injects the leak into payment-1 from the page and follows it on the page; seconds from the click to each
    step."""
    rows = {name: page.locator(f'tr[data-replica="{name}"]') for name in REPLICAS}
    for row in rows.values():
        expect(row).to_have_attribute("data-ready", "true", timeout=SETTLE_MS)
        expect(row).to_have_attribute("data-restarts", "0")
    expect(page.locator("#rate")).not_to_have_text(NOT_COUNTED, timeout=SETTLE_MS)

    leaking = rows["payment-1"]
    page.get_by_role("button", name="leak payment-1", exact=True).click()
    clicked = time.monotonic()
    expect(page.locator("#action")).to_have_text("leak → payment-1: done")
    timings: dict[str, float] = {}
    expect(leaking).to_have_attribute("data-ready", "false", timeout=RECOVERY_MS)
    timings["unready"] = time.monotonic() - clicked
    expect(leaking).to_have_attribute("data-restarts", "1", timeout=RECOVERY_MS)
    timings["restarted"] = time.monotonic() - clicked
    expect(leaking.locator(".restarts .detail")).to_have_text("failed liveness")
    expect(leaking).to_have_attribute("data-ready", "true", timeout=RECOVERY_MS)
    timings["ready again"] = time.monotonic() - clicked
    assert launch.said("payment-1: liveness probe failed"), launch.log()

    for name in ("payment-2", "payment-3"):
        expect(rows[name]).to_have_attribute("data-restarts", "0")
    for kind in ("fault injected", "unready", "liveness failing", "restarted", "ready again"):
        expect(page.locator(f'#timeline li[data-kind="{kind}"][data-replica="payment-1"]').first).to_be_attached()
    expect(page.locator('#timeline li[data-kind="restarted"][data-replica="payment-1"]').first).to_contain_text(
        "failed liveness"
    )
    expect(page.locator("#rate")).not_to_have_text(NOT_COUNTED, timeout=SETTLE_MS)
    if screenshot := os.environ.get("RECOVERY_SCREENSHOT"):
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=screenshot, full_page=True)
    return timings
