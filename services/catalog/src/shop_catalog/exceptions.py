from shopkit import ConflictError, NotFoundError, UnprocessableError


class ProductNotFound(NotFoundError):
    title, slug = "Product not found", "product-not-found"


class ReservationNotFound(NotFoundError):
    title, slug = "Reservation not found", "reservation-not-found"


class UnknownSku(UnprocessableError):
    title, slug = "Unknown product", "unknown-sku"


class InsufficientStock(ConflictError):
    title, slug = "Insufficient stock", "insufficient-stock"


class IdempotencyKeyReused(ConflictError):
    title, slug = "Idempotency key reused", "idempotency-key-reused"


class InvalidReservationState(ConflictError):
    title, slug = "Reservation is not in a state that allows this", "invalid-reservation-state"
