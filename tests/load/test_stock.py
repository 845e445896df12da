"""Enough stock for the sale: how much the drill raises, and that it raises it through the storefront's
`/ops/restock` as the operator (the in-process shop: the storefront's operator door in front of catalog)."""

import httpx
import pytest

from shop_devtools.credentials import OPERATOR
from shop_load.core import ops, stock
from shop_load.core.drill_args import DrillConfig, DrillError, parse_args
from tests.conftest import CREDENTIALS, Shop


def asked(restock: str, rate: float) -> DrillConfig:
    return parse_args(["--restock", restock, "--rate", str(rate)])


def test_stock_is_raised_only_when_the_sale_would_sell_out() -> None:
    inventory = [{"sku": "A", "stock": 40}, {"sku": "B", "stock": 10}]
    needed = stock.units_needed(50, 50)
    assert needed == 5250
    assert stock.restock_level(inventory, needed) == 2625
    assert stock.restock_level(inventory, 50) is None
    assert stock.restock_level([], needed) is None
    assert stock.chosen_level("auto", inventory, needed) == 2625
    assert stock.chosen_level(" 300 ", inventory, needed) == 300
    assert stock.chosen_level("0", inventory, needed) is None
    assert stock.chosen_level("off", inventory, needed) is None
    with pytest.raises(DrillError, match="a number of units, auto, or 0"):
        stock.chosen_level("lots", inventory, needed)


async def test_the_drill_restocks_through_the_operators_door(shop: Shop) -> None:
    operator = ops.Operator(CREDENTIALS[OPERATOR], "the test session")
    before = {row["sku"]: row for row in await operator.inventory(shop.storefront)}
    assert len(before) >= 20
    level = max(int(row["stock"]) for row in before.values()) + 7
    below = sorted(sku for sku, row in before.items() if int(row["stock"]) < level)

    note = await stock.restock(asked(str(level), 8.0), shop.storefront, operator, 60)
    assert note == f"restocked before the drill: {len(below)} products raised to {level} units each (POST /ops/restock)"
    after = {row["sku"]: row for row in await operator.inventory(shop.storefront)}
    assert {sku: int(row["stock"]) for sku, row in after.items()} == dict.fromkeys(before, level)
    assert {sku: (row["held"], row["sold"]) for sku, row in after.items()} == {
        sku: (row["held"], row["sold"]) for sku, row in before.items()
    }, "only the stock on hand changes"

    auto = asked("auto", 1.0)
    assert await stock.restock(auto, shop.storefront, operator, 1) is None, "enough on hand: nothing to raise"
    off = asked("0", 50.0)
    assert await stock.restock(off, shop.storefront, operator, 600) is None


async def test_without_the_operators_credential_nothing_is_restocked(shop: Shop) -> None:
    operator = ops.Operator(CREDENTIALS[OPERATOR], "the test session")
    before = await operator.inventory(shop.storefront)
    stranger = ops.Operator("x" * 64, "a guess")
    options = asked("1000", 50.0)
    assert await stock.restock(options, shop.storefront, stranger, 60) is None
    with pytest.raises(
        httpx.HTTPError, match="answered 401: the storefront refused the operator's credential from a guess"
    ):
        await stranger.restock(shop.storefront, 1000)
    assert await operator.inventory(shop.storefront) == before
