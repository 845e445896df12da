"""shopkit.settings: shared names unprefixed, a service's own prefixed; chaos needs a real token."""

import pytest
from pydantic import ValidationError

from shop_payment.settings import PaymentSettings
from shopkit import ServiceSettings


def test_shared_settings_are_unprefixed_and_service_settings_prefixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOS_ENABLED", "true")
    monkeypatch.setenv("CHAOS_TOKEN", "a-long-random-token")
    monkeypatch.setenv("MEMORY_BUDGET_BYTES", "400000000")
    monkeypatch.setenv("PAYMENT_PROVIDER_LATENCY_MS", "500")
    monkeypatch.setenv("PROVIDER_LATENCY_MS", "1")
    settings = PaymentSettings()
    assert settings.chaos_enabled
    assert settings.memory_budget_bytes == 400_000_000
    assert settings.provider_latency_ms == 500
    assert settings.port == 8083


def test_chaos_needs_a_token_and_production_refuses_placeholders() -> None:
    with pytest.raises(ValidationError, match="CHAOS_TOKEN"):
        ServiceSettings(chaos_enabled=True)
    with pytest.raises(ValidationError, match="placeholder"):
        ServiceSettings(environment="production", chaos_enabled=True, chaos_token="changeme")
    assert ServiceSettings(environment="development", chaos_enabled=True, chaos_token="changeme").chaos_enabled
