"""Problem types (RFC 9457) that one party sends and another acts on: compared by their last segment, never by a
string spelled again on the other side."""

from enum import StrEnum

PROBLEM_BASE = "https://resilient-shop.dev/problems/"
"""Every problem `type` the shop sends is this followed by a slug."""


class ProblemType(StrEnum):
    """The slugs another service or a client matches on; a service's other slugs stay with its exceptions."""

    INSUFFICIENT_STOCK = "insufficient-stock"
    """Catalog (a reservation) and payment (passing it on): a correct answer, not a failure, to the customer."""
    UNKNOWN_SKU = "unknown-sku"
    """Catalog, passed on by payment."""
    IDEMPOTENCY_KEY_REUSED = "idempotency-key-reused"
    """Catalog and payment: the key came before with another request."""
    INVALID_RESERVATION_STATE = "invalid-reservation-state"
    """Catalog: the reservation is no longer held (expired, or finished the other way); payment reads it as such."""

    @property
    def uri(self) -> str:
        """The problem's `type` as sent: `https://resilient-shop.dev/problems/insufficient-stock`."""
        return PROBLEM_BASE + self.value
