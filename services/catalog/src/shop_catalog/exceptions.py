from shop_contracts import ProblemType
from shopkit import ConflictError, NotFoundError, UnprocessableError


class ProductNotFound(NotFoundError):
    title, slug = "Product not found", "product-not-found"


class ReservationNotFound(NotFoundError):
    title, slug = "Reservation not found", "reservation-not-found"


class UnknownSku(UnprocessableError):
    title, slug = "Unknown product", ProblemType.UNKNOWN_SKU


class InsufficientStock(ConflictError):
    title, slug = "Insufficient stock", ProblemType.INSUFFICIENT_STOCK


class IdempotencyKeyReused(ConflictError):
    title, slug = "Idempotency key reused", ProblemType.IDEMPOTENCY_KEY_REUSED


class InvalidReservationState(ConflictError):
    title, slug = "Reservation is not in a state that allows this", ProblemType.INVALID_RESERVATION_STATE
