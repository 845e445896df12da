import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from shop_contracts import LineItems, ReservationStatus


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
