"""What a customer of the shop does, whichever tool drives it (Locust or the drill): the weights of a real shop,
the test cards, how a basket is chosen and which answers of `POST /api/payments` are final.

No Locust import here: importing Locust monkey-patches the standard library with gevent.
"""

import random
import secrets
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from shop_contracts import CUSTOMER_RETRYABLE_STATUSES, ProblemType

APPROVED_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"

TASK_WEIGHTS: Mapping[str, int] = {
    "browse": 40,  # a page of the product list
    "search": 15,
    "view": 30,  # one product
    "orders": 5,  # my payments
    "checkout": 6,  # pay for a basket
}
"""Relative weights of a Locust customer's tasks: browsing is by far the most common, as in a real shop."""

SEARCH_TERMS = ("keyboard", "usb", "monitor", "desk", "wireless", "cable", "lamp", "ssd", "mouse", "speaker")


class Answer(Protocol):
    """An HTTP answer, httpx's or Locust's."""

    def json(self) -> Any: ...


def json_body(answer: Answer) -> Any:
    """The JSON the answer carries; None when it carries none."""
    try:
        return answer.json()
    except ValueError:
        return None


def new_credentials() -> dict[str, str]:
    """A throw-away customer: unique email, random password, a name."""
    suffix = uuid.uuid4().hex[:12]
    return {"email": f"shopper-{suffix}@example.com", "password": secrets.token_urlsafe(12), "name": "Load Shopper"}


def new_idempotency_key(prefix: str = "checkout") -> str:
    return f"{prefix}-{uuid.uuid4()}"


def in_stock(products: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [product for product in products if int(product.get("stock", 0)) > 0]


def pick_basket(products: Sequence[Mapping[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """One or two lines of products that had stock, one unit each (rarely two), weighted by the stock left so a
    busy sale drains the shelves evenly. Empty when nothing has stock."""
    if not (pool := in_stock(products)):  # a list of its own: each product chosen leaves it
        return []
    lines = min(len(pool), 1 if rng.random() < 0.75 else 2)
    chosen: list[Mapping[str, Any]] = []
    for _ in range(lines):
        product = rng.choices(pool, weights=[int(p["stock"]) for p in pool])[0]
        pool.remove(product)
        chosen.append(product)
    return [{"sku": str(p["sku"]), "quantity": 2 if int(p["stock"]) > 20 and rng.random() < 0.1 else 1} for p in chosen]


def card_for(rng: random.Random, declined_share: float) -> str:
    return DECLINED_CARD if rng.random() < declined_share else APPROVED_CARD


def problem_slug(body: object) -> str:
    """The last segment of a problem+json `type` ("insufficient-stock"), or ''."""
    if isinstance(body, Mapping) and isinstance(kind := body.get("type"), str):
        return kind.rstrip("/").rsplit("/", 1)[-1]
    return ""


def checkout_outcome(status: int | None, body: object) -> str:
    """What a payment answer means to the customer: captured, declined, out_of_stock (a correct business answer),
    retry (try again with the same key), or rejected (the request itself was refused)."""
    if status == 201:
        return "captured"
    if status == 402:
        return "declined"
    if status == 409 and problem_slug(body) == ProblemType.INSUFFICIENT_STOCK:
        return "out_of_stock"
    return "retry" if status is None or status in CUSTOMER_RETRYABLE_STATUSES else "rejected"


def payment_of(status: int | None, body: object) -> Mapping[str, Any] | None:
    """The payment in a 201 answer (the body) or a 402 problem (its `payment` member)."""
    if not isinstance(body, Mapping):
        return None
    if status == 201:
        return body
    if status == 402 and isinstance(payment := body.get("payment"), Mapping):
        return payment
    return None


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delay-seconds or an HTTP date, RFC 9110); None when absent or
    unreadable."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if seconds == seconds else None  # NaN is no answer
