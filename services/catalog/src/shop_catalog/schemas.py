import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shop_catalog.models import ReservationStatus

Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Z0-9][A-Z0-9-]*$")]
Quantity = Annotated[int, Field(ge=1, le=100, strict=True)]


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


class LineItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku
    quantity: Quantity


class ReservationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[LineItem], Field(min_length=1, max_length=50)]

    @field_validator("items")
    @classmethod
    def _one_line_per_sku(cls, items: list[LineItem]) -> list[LineItem]:
        skus = [item.sku for item in items]
        if len(skus) != len(set(skus)):
            raise ValueError("each sku may appear in one line only")
        return items


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
