import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shop_contracts import LineItems
from shop_payment.models import PaymentStatus


def luhn_valid(number: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


class PaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: LineItems
    card_number: Annotated[str, Field(min_length=12, max_length=19, pattern=r"^[0-9]+$", strict=True)]

    @field_validator("card_number")
    @classmethod
    def _luhn(cls, number: str) -> str:
        if not luhn_valid(number):
            raise ValueError("card number fails the Luhn check")
        return number


class PaymentItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sku: str
    quantity: int
    unit_price_cents: int


class PaymentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: PaymentStatus
    amount_cents: int
    currency: str
    items: list[PaymentItemRead]
    card_last4: str
    decline_reason: str | None
    created_at: datetime
    completed_at: datetime | None


class PaymentPage(BaseModel):
    items: list[PaymentRead]
    total: int
