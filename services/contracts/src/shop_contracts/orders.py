"""The order line both catalog (a reservation) and payment (a payment) take: a SKU and a quantity, one line per SKU."""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SKU_MAX_LENGTH = 64

Sku = Annotated[str, Field(min_length=1, max_length=SKU_MAX_LENGTH, pattern=r"^[A-Z0-9][A-Z0-9-]*$")]
Quantity = Annotated[int, Field(ge=1, le=100, strict=True)]


class LineItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku
    quantity: Quantity


def one_line_per_sku(items: list[LineItem]) -> list[LineItem]:
    """Refuses a SKU on two lines: the quantities are not added up, the client says what it wants once."""
    skus = [item.sku for item in items]
    if len(skus) != len(set(skus)):
        raise ValueError("each sku may appear in one line only")
    return items


LineItems = Annotated[list[LineItem], Field(min_length=1, max_length=50), AfterValidator(one_line_per_sku)]
"""The lines of one order: 1 to 50, each SKU on one line only."""
