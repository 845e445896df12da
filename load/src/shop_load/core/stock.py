"""Enough stock for the sale: at 50 checkouts/s the seeded catalog (about 1,400 units) sells out in about 20 s,
after which every checkout is a quick `409 insufficient stock` and the drill measures a shop that has nothing left
to sell (and the next drill cannot start).

So, before it reads the inventory its `stock_conserved` invariant starts from, the drill restocks through the
storefront's operator door (`POST /ops/restock`, `shop_load.core.ops`): catalog raises every product's stock to at
least the level asked, in one transaction, and logs who asked; its product-list cache hears of it like of any
stock change. The same call works on every target (make run, compose, the container proof, a cluster), and only
when the stock on hand would not last the planned sale (`--restock auto`), or to the level given (`--restock N`);
`--restock 0` never restocks.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from shop_load.core.drill_args import DrillConfig, DrillError
from shop_load.core.ops import RESTOCK_PATH, Operator

UNITS_PER_CHECKOUT = 1.4
"""What a basket of `shopping.pick_basket` takes on average (a quarter of them two lines, some lines two units)."""
MARGIN = 1.5
OFF = frozenset({"0", "off", "no", "never"})


def units_needed(rate: float, seconds: float) -> int:
    """Units the sale may take: `rate` checkouts/s for `seconds`, with a margin."""
    return math.ceil(rate * seconds * UNITS_PER_CHECKOUT * MARGIN)


def restock_level(inventory: Sequence[Mapping[str, Any]], needed: int) -> int | None:
    """The per-product stock to raise every product to so the shop has `needed` units on hand; None when it already
    has them (or has no product)."""
    if not inventory or sum(int(row["stock"]) for row in inventory) >= needed:
        return None
    return math.ceil(needed / len(inventory))


def chosen_level(choice: str, inventory: Sequence[Mapping[str, Any]], needed: int) -> int | None:
    """The level `--restock` asks for (`auto`, a number of units, or off), given the stock on hand."""
    choice = choice.strip().lower()
    if choice in OFF:
        return None
    if choice == "auto":
        return restock_level(inventory, needed)
    try:
        level = int(choice)
    except ValueError:
        raise DrillError(f"--restock {choice!r}: a number of units, auto, or 0") from None
    return level if level > 0 else None


async def restock(config: DrillConfig, client: httpx.AsyncClient, operator: Operator, seconds: float) -> str | None:
    """Raises the stock so the planned sale does not sell out (`--restock`); returns a note for the report."""
    if config.restock.strip().lower() in OFF:
        return None
    try:
        rows = await operator.inventory(client)
    except httpx.HTTPError:
        return None  # reading the inventory for the invariants says what is wrong
    if (level := chosen_level(config.restock, rows, units_needed(config.rate, seconds))) is None:
        return None
    on_hand = sum(int(row["stock"]) for row in rows)
    try:
        raised = await operator.restock(client, level)
    except httpx.HTTPError as exc:
        return f"could not restock through {RESTOCK_PATH} ({exc}); {on_hand} units on hand"
    return f"restocked before the drill: {len(raised)} products raised to {level} units each (POST {RESTOCK_PATH})"


async def put_back(client: httpx.AsyncClient, operator: Operator, before: Sequence[Mapping[str, Any]]) -> str:
    """Raises each product's stock back to at least what `before` (the inventory as the sale began) says, through
    `POST /ops/restock` (one call per level); returns a note for the report. Restock only raises, and no endpoint
    takes stock away: a product whose stock is higher now (a held reservation that expired, an operator's restock)
    keeps it, so the shop is left with at least what it had, never less. What was sold stays sold."""
    levels: dict[int, list[str]] = {}
    for row in before:
        levels.setdefault(int(row["stock"]), []).append(str(row["sku"]))
    try:
        raised = [sku for level, skus in sorted(levels.items()) for sku in await operator.restock(client, level, skus)]
    except httpx.HTTPError as exc:
        return f"could not put the sale's purchases back through {RESTOCK_PATH}: {exc}"
    return f"put back: {len(raised)} products raised to their stock before the sale (POST {RESTOCK_PATH})"
