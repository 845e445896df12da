"""Enough stock for the sale: at 50 checkouts/s the seeded catalog (about 1,400 units) sells out in about 20 s,
after which every checkout is a quick `409 insufficient stock` and the drill measures a shop that has nothing left
to sell (and the next drill cannot start).

The shop has no restock API, so, like the bench, the drill raises stock in catalog's database before it reads the
inventory its `stock_conserved` invariant starts from (catalog's product-list cache hears of it through the
database's `products_changed` notification, like any stock change). Only the database of `make run` (or the one
given) is touched, only before the drill, only when the stock on hand would not last the planned sale
(`--restock auto`), and only when that database holds exactly the stock the shop's API shows.
"""

import argparse
import asyncio
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg

from shop_load import invariants
from shop_load.drill_args import DrillError

UNITS_PER_CHECKOUT = 1.4
"""What a basket of `shopping.pick_basket` takes on average (a quarter of them two lines, some lines two units)."""
MARGIN = 1.5
MAKE_RUN_PG_PORT = 5433


def make_run_database_url(environ: Mapping[str, str] | None = None) -> str:
    """catalog's database under `make run` (its role, password and database are all `catalog`)."""
    env = os.environ if environ is None else environ
    return f"postgresql://catalog:catalog@127.0.0.1:{env.get('SHOP_PG_PORT') or MAKE_RUN_PG_PORT}/catalog"


def units_needed(rate: float, seconds: float) -> int:
    """Units the sale may take: `rate` checkouts/s for `seconds`, with a margin."""
    return math.ceil(rate * seconds * UNITS_PER_CHECKOUT * MARGIN)


def restock_level(inventory: Sequence[Mapping[str, Any]], needed: int) -> int | None:
    """The per-product stock to raise every product to so the shop has `needed` units on hand; None when it already
    has them (or has no product)."""
    on_hand = sum(int(row["stock"]) for row in inventory)
    if not inventory or on_hand >= needed:
        return None
    return math.ceil(needed / len(inventory))


class NotTheShop(Exception):
    """The database's products are not the ones the shop's API shows: it is not this shop's catalog database."""


def raise_stock(database_url: str, units: int, expected: Sequence[Mapping[str, Any]], *, timeout: float = 5.0) -> int:
    """Raises every product's stock to at least `units`, in one transaction, after checking that the database holds
    exactly the stock the shop's API showed (`expected`, from `GET /api/inventory`): a `make run` database of some
    other shop is left alone (`NotTheShop`). Returns how many products changed."""
    shown = {str(row["sku"]): int(row["stock"]) for row in expected}
    with psycopg.connect(database_url, connect_timeout=max(1, round(timeout))) as conn, conn.transaction():
        rows = conn.execute("SELECT sku, stock FROM products ORDER BY sku FOR UPDATE").fetchall()
        stored = {str(sku): int(stock) for sku, stock in rows}
        if stored != shown:
            raise NotTheShop(f"{len(stored)} products there, stock differing from the {len(shown)} the shop shows")
        cursor = conn.execute("UPDATE products SET stock = %s WHERE stock < %s", (units, units))
        return cursor.rowcount


async def restock(
    options: argparse.Namespace, client: httpx.AsyncClient, base_url: str, mode: str, seconds: float
) -> str | None:
    """Raises the stock so the planned sale does not sell out (`--restock`); returns a note for the report."""
    choice = str(options.restock).strip().lower()
    if choice in {"0", "off", "no", "never"}:
        return None
    loopback = urlsplit(base_url).hostname in {"localhost", "127.0.0.1", "::1"}
    database_url = options.catalog_database_url or (make_run_database_url() if mode == "local" and loopback else None)
    try:
        rows = await invariants.inventory(client)
    except httpx.HTTPError:
        return None  # the customers' preparation says what is wrong with the shop
    needed = units_needed(options.rate, seconds)
    if choice == "auto":
        level = restock_level(rows, needed)
    else:
        try:
            level = int(choice)
        except ValueError:
            raise DrillError(f"--restock {options.restock!r}: a number of units, auto, or 0") from None
    on_hand = sum(int(row["stock"]) for row in rows)
    if level is None or level <= 0:
        return None
    if database_url is None:
        return (
            f"the shop has {on_hand} units for a sale that may take {needed}: it may sell out (a 409 "
            "insufficient stock is an answer); --catalog-database-url lets the drill restock first"
        )
    try:
        changed = await asyncio.to_thread(raise_stock, database_url, level, rows)
    except NotTheShop as exc:
        return f"did not restock: {database_url.rsplit('@', 1)[-1]} is not this shop's catalog database ({exc})"
    except Exception as exc:  # psycopg's errors name the server and the reason
        reason = f"{type(exc).__name__}: {str(exc)[:160]}"
        return f"could not restock through catalog's database ({reason}); {on_hand} units on hand"
    return f"restocked before the drill: {changed} products raised to {level} units each in catalog's database"
