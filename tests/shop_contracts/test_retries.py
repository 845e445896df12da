"""The two sets of retryable answers: a service retries 502 and 503 at once, a customer also retries a 504."""

import httpx
import pytest

from shop_contracts import CUSTOMER_RETRYABLE_STATUSES, SERVICE_RETRYABLE_STATUSES
from shop_load.core.shopping import checkout_outcome
from shopkit import send_with_retries


def test_a_customer_retries_everything_a_service_retries_and_a_timeout() -> None:
    assert sorted(SERVICE_RETRYABLE_STATUSES) == [502, 503]
    assert sorted(CUSTOMER_RETRYABLE_STATUSES - SERVICE_RETRYABLE_STATUSES) == [504]


async def _tries(status: int) -> int:
    """How often `send_with_retries` sends a GET that is answered `status` every time."""
    sent = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal sent
        sent += 1
        return httpx.Response(status)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://upstream") as client:
        response = await send_with_retries(client, client.build_request("GET", "/"), backoff_seconds=0)
    assert response.status_code == status
    return sent


@pytest.mark.parametrize("status", sorted(CUSTOMER_RETRYABLE_STATUSES | {500}))
async def test_a_service_retries_only_its_own_set(status: int) -> None:
    assert await _tries(status) == (3 if status in SERVICE_RETRYABLE_STATUSES else 1)


@pytest.mark.parametrize("status", sorted(CUSTOMER_RETRYABLE_STATUSES | {500}))
def test_a_customer_retries_its_checkout_on_its_own_set(status: int) -> None:
    expected = "retry" if status in CUSTOMER_RETRYABLE_STATUSES else "rejected"
    assert checkout_outcome(status, {}) == expected
