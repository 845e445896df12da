"""The storefront itself: the web page, probes, metrics and settings."""

import base64
import hashlib
import re

import httpx
import pytest

from shop_storefront.settings import StorefrontSettings


async def test_the_web_shop_is_one_self_contained_page(offline_storefront: httpx.AsyncClient) -> None:
    response = await offline_storefront.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for call in ("/api${path}", "/products?", "/tokens", "/users", "/payments", "Idempotency-Key"):
        assert call in page
    assert 'value="4242424242424242"' in page
    assert "crypto.randomUUID" in page
    assert "http://" not in page  # nothing is loaded from elsewhere
    assert "https://" not in page
    policy = response.headers["content-security-policy"]
    script = re.search(r"<script>(.*?)</script>", page, re.DOTALL)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy
    assert (await offline_storefront.head("/")).status_code == 200


async def test_probes_are_fine_with_every_backend_down(offline_storefront: httpx.AsyncClient) -> None:
    assert (await offline_storefront.get("/healthz")).json() == {"status": "ok"}
    ready = await offline_storefront.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


async def test_metrics_count_proxied_requests(offline_storefront: httpx.AsyncClient) -> None:
    await offline_storefront.get("/api/payments")

    metrics = (await offline_storefront.get("/metrics")).text

    assert 'shop_gateway_requests_total{outcome="unavailable",upstream="payment"}' in metrics
    assert 'shop_gateway_retries_total{upstream="payment"}' in metrics


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9080")
    monkeypatch.setenv("STOREFRONT_CATALOG_URL", "http://catalog.shop.svc:8081")
    monkeypatch.setenv("STOREFRONT_USERS_URL", "http://users.shop.svc:8082")
    monkeypatch.setenv("STOREFRONT_PAYMENT_URL", "http://payment.shop.svc:8083")
    monkeypatch.setenv("STOREFRONT_RETRY_ATTEMPTS", "1")

    settings = StorefrontSettings()

    assert settings.port == 9080
    assert settings.catalog_url == "http://catalog.shop.svc:8081"
    assert settings.users_url == "http://users.shop.svc:8082"
    assert settings.payment_url == "http://payment.shop.svc:8083"
    assert settings.retry_attempts == 1
    assert settings.database_url is None


def test_default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "STOREFRONT_CATALOG_URL", "STOREFRONT_RETRY_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)
    settings = StorefrontSettings()
    assert (settings.port, settings.catalog_url, settings.retry_attempts) == (8080, "http://127.0.0.1:8081", 3)


@pytest.mark.parametrize(("name", "value"), [("STOREFRONT_RETRY_ATTEMPTS", "0"), ("STOREFRONT_PAYMENT_URL", "payment")])
def test_invalid_settings_are_refused(name: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name.removeprefix("STOREFRONT_").lower()):
        StorefrontSettings()
