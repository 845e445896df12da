from shopkit import ConflictError, NotFoundError, ShopError, UnavailableError, UnprocessableError


class PaymentNotFound(NotFoundError):
    title, slug = "Payment not found", "payment-not-found"


class IdempotencyKeyReused(ConflictError):
    title, slug = "Idempotency key reused", "idempotency-key-reused"


class InsufficientStock(ConflictError):
    title, slug = "Insufficient stock", "insufficient-stock"


class UnknownSku(UnprocessableError):
    title, slug = "Unknown product", "unknown-sku"


class PaymentDeclined(ShopError):
    status, title, slug = 402, "Payment declined", "payment-declined"


class PaymentPending(UnavailableError):
    """The payment is stored as pending but could not be finished now; retrying with the same key finishes it."""

    title, slug = "Payment still pending", "payment-pending"

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail, headers={"Retry-After": "1"}, **extra)


class DependencyUnavailable(UnavailableError):
    title, slug = "A service the payment depends on is unavailable", "dependency-unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})
