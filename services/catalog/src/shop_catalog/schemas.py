import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shop_contracts import LineItems, ReservationStatus, Sku

MAX_STOCK = 1_000_000


class ProductRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sku: str
    name: str
    description: str
    price_cents: int
    currency: str
    stock: int


class ProductPage(BaseModel):
    items: list[ProductRead]
    total: int


class InventoryRead(BaseModel):
    """Units of a product by state; `stock + held + sold` only changes when the shop restocks."""

    sku: str
    stock: int
    held: int
    sold: int


class RestockRequest(BaseModel):
    """Raise the stock of the listed products (every product when `skus` is absent) to at least `at_least`."""

    model_config = ConfigDict(extra="forbid")

    at_least: int = Field(ge=0, le=MAX_STOCK, strict=True)
    skus: list[Sku] | None = Field(None, min_length=1, max_length=1000)


class RestockRead(BaseModel):
    raised: list[str]
    """The products whose stock was below `at_least` and now equals it."""
    inventory: list[InventoryRead]
    """Every product after the restock."""


class ReservationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: LineItems


class ReservedItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sku: str
    quantity: int
    unit_price_cents: int
    currency: str


class ReservationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: ReservationStatus
    items: list[ReservedItem]
    expires_at: datetime
    created_at: datetime
