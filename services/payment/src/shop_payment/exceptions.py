from shop_contracts import ProblemType
from shopkit import ConflictError, NotFoundError, RetryLaterError, ShopError, UnprocessableError


class PaymentNotFound(NotFoundError):
    title, slug = "Payment not found", "payment-not-found"


class IdempotencyKeyReused(ConflictError):
    title, slug = "Idempotency key reused", ProblemType.IDEMPOTENCY_KEY_REUSED


class InsufficientStock(ConflictError):
    title, slug = "Insufficient stock", ProblemType.INSUFFICIENT_STOCK


class UnknownSku(UnprocessableError):
    title, slug = "Unknown product", ProblemType.UNKNOWN_SKU


class PaymentDeclined(ShopError):
    status, title, slug = 402, "Payment declined", "payment-declined"


class PaymentPending(RetryLaterError):
    """The payment is stored as pending but could not be finished now; retrying with the same key finishes it."""

    title, slug = "Payment still pending", "payment-pending"


class DependencyUnavailable(RetryLaterError):
    title, slug = "A service the payment depends on is unavailable", "dependency-unavailable"
