"""shop_contracts: what the resilient-shop services and their clients agree on, written once. Schemas and
constants only: no ORM, no HTTP, nothing but pydantic."""

from shop_contracts.orders import SKU_MAX_LENGTH, LineItem, LineItems, Quantity, Sku, one_line_per_sku
from shop_contracts.problems import PROBLEM_BASE, ProblemType
from shop_contracts.reservations import ReservationStatus
from shop_contracts.retries import CUSTOMER_RETRYABLE_STATUSES, SERVICE_RETRYABLE_STATUSES
from shop_contracts.tokens import JWT_AUDIENCE, JWT_ISSUER

__all__ = [
    "CUSTOMER_RETRYABLE_STATUSES",
    "JWT_AUDIENCE",
    "JWT_ISSUER",
    "PROBLEM_BASE",
    "SERVICE_RETRYABLE_STATUSES",
    "SKU_MAX_LENGTH",
    "LineItem",
    "LineItems",
    "ProblemType",
    "Quantity",
    "ReservationStatus",
    "Sku",
    "one_line_per_sku",
]
