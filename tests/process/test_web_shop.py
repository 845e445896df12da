"""The web shop in a real browser (Debian's chromium driven by Playwright) against a real running shop.

Run it alone with `make test-browser`. Without a chromium on the machine it skips and says how to get one; CI
installs Debian's `chromium` package.
"""

import os
import shutil
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Locator, Page, expect, sync_playwright

from tests.process.conftest import ServiceProcess, StartService, start_shop

pytestmark = pytest.mark.process

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
APPROVED, DECLINED = "4242424242424242", "4000000000000002"
PROVIDER_LATENCY_MS = 400
"""Slow enough that a second click on Pay lands while the first payment is still in flight."""


@pytest.fixture
def shop(start_service: StartService, database_urls: Mapping[str, str]) -> dict[str, ServiceProcess]:
    return start_shop(start_service, database_urls, provider_latency_ms=PROVIDER_LATENCY_MS)


@pytest.fixture
def page(shop: Mapping[str, ServiceProcess]) -> Iterator[Page]:
    if CHROMIUM is None:
        pytest.skip("no chromium: `apt-get install chromium` (Debian) or set CHROMIUM to a Chromium binary")
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(locale="en-US")
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.on("console", lambda message: _console(message, problems))
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        response = page.goto(shop["storefront"].url + "/")
        assert response is not None
        assert response.status == 200
        assert "default-src 'none'" in response.headers["content-security-policy"]
        yield page
        browser.close()
    assert problems == [], "the page logged errors (a CSP violation is one)"


def _console(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type == "error" and "the server responded with a status of 402" not in message.text:
        problems.append(f"console: {message.text}")


def stock(shop: Mapping[str, ServiceProcess]) -> dict[str, int]:
    items = httpx.get(shop["catalog"].url + "/products?limit=100", headers={"Cache-Control": "no-cache"}).json()
    return {product["sku"]: product["stock"] for product in items["items"]}


def payments(shop: Mapping[str, ServiceProcess], page: Page) -> list[dict[str, Any]]:
    token = page.evaluate("sessionStorage.getItem('token')")
    response = httpx.get(shop["payment"].url + "/payments?limit=100", headers={"Authorization": f"Bearer {token}"})
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def product_card(page: Page, name: str) -> Locator:
    return page.locator("#products li.product").filter(has=page.get_by_role("heading", name=name, exact=True))


def add_to_cart(page: Page, name: str) -> None:
    product_card(page, name).get_by_role("button", name="Add to cart").click()


def test_register_search_pay_and_see_it(page: Page, shop: Mapping[str, ServiceProcess]) -> None:
    products = httpx.get(shop["catalog"].url + "/products?limit=100").json()["items"]
    first, second = products[0], products[1]
    before = stock(shop)

    page.locator("#register input[name=name]").fill("Ada Shopper")
    page.locator("#register input[name=email]").fill("ada@example.com")
    page.locator("#register input[name=password]").fill("correct horse battery")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#whoami")).to_have_text("ada@example.com")
    expect(page.locator("#payments")).to_contain_text("No payments yet.")

    page.locator("#search input[name=q]").fill(first["name"])
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#products li.product")).to_have_count(1)
    expect(page.locator("#products li.product h3")).to_have_text(first["name"])
    add_to_cart(page, first["name"])
    page.locator("#search input[name=q]").fill(second["name"])
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#products li.product h3")).to_have_text(second["name"])
    add_to_cart(page, second["name"])
    expect(page.locator("#cart li")).to_have_count(2)

    amount = page.evaluate("cents => money(cents)", first["price_cents"] + second["price_cents"])
    expect(page.locator("#cart-total")).to_have_text(amount)
    page.get_by_role("button", name="Pay").click()
    expect(page.locator("#checkout-message")).to_contain_text(f"Payment captured: {amount}")
    expect(page.locator("#payments")).to_contain_text(f"captured {amount}")

    after = stock(shop)
    assert after[first["sku"]] == before[first["sku"]] - 1
    assert after[second["sku"]] == before[second["sku"]] - 1
    # After a payment the page lists every product again, past the caches: the stock just taken shows.
    expect(product_card(page, first["name"])).to_contain_text(f"{after[first['sku']]} in stock")
    expect(product_card(page, second["name"])).to_contain_text(f"{after[second['sku']]} in stock")


def test_a_declined_card_shows_the_decline_and_takes_no_stock(page: Page, shop: Mapping[str, ServiceProcess]) -> None:
    register(page, "dee@example.com")
    product = httpx.get(shop["catalog"].url + "/products?limit=100").json()["items"][2]
    before = stock(shop)
    add_to_cart(page, product["name"])
    page.locator("#checkout input[name=card]").fill(DECLINED)
    page.get_by_role("button", name="Pay").click()
    expect(page.locator("#checkout-message")).to_contain_text("Payment declined (402)")
    expect(page.locator("#payments")).to_contain_text("declined")
    assert stock(shop) == before
    assert [p["status"] for p in payments(shop, page)] == ["declined"]


def test_a_double_click_on_pay_makes_one_payment(page: Page, shop: Mapping[str, ServiceProcess]) -> None:
    register(page, "dora@example.com")
    product = httpx.get(shop["catalog"].url + "/products?limit=100").json()["items"][3]
    before = stock(shop)
    add_to_cart(page, product["name"])
    page.get_by_role("button", name="Pay").dblclick()
    expect(page.locator("#checkout-message")).to_contain_text("Payment captured")
    expect(page.locator("#payments li")).to_have_count(1)
    assert [p["status"] for p in payments(shop, page)] == ["captured"]
    assert stock(shop)[product["sku"]] == before[product["sku"]] - 1


def register(page: Page, email: str) -> None:
    page.locator("#register input[name=name]").fill("Test Shopper")
    page.locator("#register input[name=email]").fill(email)
    page.locator("#register input[name=password]").fill("correct horse battery")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#whoami")).to_have_text(email)
