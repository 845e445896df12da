"""Request deadlines that travel between services.

Every request gets a deadline when it enters a service: its own `REQUEST_TIMEOUT_SECONDS`, or less when the caller
sent a smaller budget in `X-Request-Timeout-Ms` (milliseconds left, relative, so clocks need not agree). Whatever
waits on the request's behalf (a pooled connection, a call to another service, a concurrent owner) waits at most
until then, and calls to other services carry what is left, minus a margin for the answer to travel back, so the
service furthest downstream gives up first and says so, instead of the gateway timing out on it.
"""

import contextvars
import time

from shopkit.problems import RetryLaterError

DEADLINE_HEADER = "x-request-timeout-ms"
DOWNSTREAM_MARGIN_SECONDS = 0.25
DOWNSTREAM_MARGIN_FRACTION = 0.1
"""Kept back from the budget passed on (a tenth of it, at least 250 ms), so the answer of a service that gives up
reaches its caller in time, even when the request waited for a busy event loop before its clock started."""
MIN_BUDGET_SECONDS = 0.05
"""Less than this left, a call to another service is not worth starting."""

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("shop_deadline", default=None)


class DeadlineExceeded(RetryLaterError):
    title, slug = "Deadline exceeded", "deadline-exceeded"

    def __init__(self, detail: str = "The request ran out of time; retry shortly.") -> None:
        super().__init__(detail)


def parse_budget(raw: bytes | str | None) -> float | None:
    """Seconds from an `X-Request-Timeout-Ms` value; None when absent or not a positive integer."""
    if raw is None:
        return None
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    if not text.isdigit() or len(text) > 9:
        return None
    return int(text) / 1000 or None


def start(budget_seconds: float) -> contextvars.Token[float | None]:
    """Sets the current request's deadline `budget_seconds` from now."""
    return _deadline.set(time.monotonic() + budget_seconds)


def reset(token: contextvars.Token[float | None]) -> None:
    _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left before the current request's deadline (0 when it passed); None outside a request."""
    deadline = _deadline.get()
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def bounded(seconds: float) -> float:
    """`seconds`, or less when the current request has less time left."""
    left = remaining()
    return seconds if left is None else min(seconds, left)
