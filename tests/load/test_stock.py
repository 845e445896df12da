"""Enough stock for the sale: how much the drill raises, and that it only touches the shop's own catalog database."""

from collections.abc import Mapping

import psycopg
import pytest

from shop_load import stock


def test_stock_is_raised_only_when_the_sale_would_sell_out() -> None:
    inventory = [{"sku": "A", "stock": 40}, {"sku": "B", "stock": 10}]
    needed = stock.units_needed(50, 50)
    assert needed == 5250
    assert stock.restock_level(inventory, needed) == 2625
    assert stock.restock_level(inventory, 50) is None
    assert stock.restock_level([], needed) is None
    assert (
        stock.make_run_database_url({"SHOP_PG_PORT": "5633"}) == "postgresql://catalog:catalog@127.0.0.1:5633/catalog"
    )
    assert stock.make_run_database_url({}).endswith(":5433/catalog")


def test_the_shops_own_database_is_restocked_and_another_is_left_alone(database_urls: Mapping[str, str]) -> None:
    url = database_urls["catalog"]
    with psycopg.connect(url) as conn:
        shown = [{"sku": sku, "stock": units} for sku, units in conn.execute("SELECT sku, stock FROM products")]
    assert len(shown) >= 20

    other_shop = [dict(row, stock=row["stock"] + 1) if i == 0 else row for i, row in enumerate(shown)]
    with pytest.raises(stock.NotTheShop):
        stock.raise_stock(url, 500, other_shop)

    changed = stock.raise_stock(url, 500, shown)
    assert changed == len(shown)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT min(stock), max(stock) FROM products").fetchone() == (500, 500)
