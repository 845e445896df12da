"""Products and stock reservations. Stock only moves inside a transaction that also records why it moved."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    Table,
    Uuid,
    bindparam,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from shop_catalog.exceptions import (
    IdempotencyKeyReused,
    InsufficientStock,
    InvalidReservationState,
    ProductNotFound,
    ReservationNotFound,
    UnknownSku,
)
from shop_catalog.metrics import RESERVATIONS
from shop_catalog.models import Product, Reservation, ReservationItem
from shop_catalog.schemas import InventoryRead, ReservationRead, ReservedItem
from shop_contracts import LineItem, ReservationStatus
from shopkit import fingerprint

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ReserveResult:
    reservation: ReservationRead
    created: bool


async def list_products(
    session: AsyncSession, *, limit: int, offset: int, query: str | None
) -> tuple[Sequence[Product], int]:
    where = []
    if query:
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(or_(Product.name.ilike(pattern), Product.description.ilike(pattern)))
    total = await session.scalar(select(func.count()).select_from(Product).where(*where))
    rows = await session.scalars(select(Product).where(*where).order_by(Product.sku).limit(limit).offset(offset))
    return rows.all(), total or 0


async def get_product(session: AsyncSession, sku: str) -> Product:
    product = await session.get(Product, sku)
    if product is None:
        raise ProductNotFound(f"No product with sku {sku!r}.")
    return product


async def inventory(session: AsyncSession) -> list[InventoryRead]:
    held = func.coalesce(
        func.sum(case((Reservation.status == ReservationStatus.HELD, ReservationItem.quantity), else_=0)), 0
    )
    sold = func.coalesce(
        func.sum(case((Reservation.status == ReservationStatus.COMMITTED, ReservationItem.quantity), else_=0)), 0
    )
    rows = await session.execute(
        select(Product.sku, Product.stock, held, sold)
        .outerjoin(ReservationItem, ReservationItem.sku == Product.sku)
        .outerjoin(Reservation, Reservation.id == ReservationItem.reservation_id)
        .group_by(Product.sku)
        .order_by(Product.sku)
    )
    return [InventoryRead(sku=sku, stock=stock, held=h, sold=s) for sku, stock, h, s in rows]


async def restock(session: AsyncSession, *, at_least: int, skus: Sequence[str] | None, caller: str) -> list[str]:
    """Raises every listed product's stock (every product's without a list) to at least `at_least`, in the caller's
    transaction; an unknown SKU changes nothing. Returns the SKUs raised, and logs who asked."""
    if skus is not None:
        known = set(await session.scalars(select(Product.sku).where(Product.sku.in_(skus))))
        if unknown := sorted(set(skus) - known):
            raise UnknownSku(f"Unknown sku: {', '.join(unknown[:5])}.")
    where = [Product.stock < at_least] + ([Product.sku.in_(skus)] if skus is not None else [])
    raised = list(await session.scalars(update(Product).where(*where).values(stock=at_least).returning(Product.sku)))
    log.info("stock_restocked", caller=caller, at_least=at_least, raised=len(raised), skus=sorted(raised)[:50])
    return sorted(raised)


PRODUCTS = cast(Table, Product.__table__)
RESERVATIONS_TABLE = cast(Table, Reservation.__table__)
RESERVATION_ITEMS = cast(Table, ReservationItem.__table__)

# The reservation's hot paths (reserve, commit, read) are Core statements on a connection, built once with bind
# parameters, their rows read as tuples: through the ORM session, its statement handling, bulk insert and update
# machinery and the objects it loaded (items by a second SELECT) cost catalog more CPU than the statements did.
_NEW_RESERVATION = (
    insert(RESERVATIONS_TABLE)
    .values(
        id=bindparam("id"),
        idempotency_key=bindparam("key"),
        request_hash=bindparam("request_hash"),
        status=ReservationStatus.HELD,
        expires_at=bindparam("expires_at"),
    )
    .on_conflict_do_nothing(index_elements=[RESERVATIONS_TABLE.c.idempotency_key])
    .returning(RESERVATIONS_TABLE.c.created_at)
)


def _take_line() -> ReturningInsert[int, str]:
    """One line in one statement: its stock taken if there is enough (`UPDATE ... WHERE stock >= n`), and the
    reservation's item written at the price of that moment; no row back when the stock is short or the sku unknown."""
    products = PRODUCTS.c
    taken = (
        update(PRODUCTS)
        .where(products.sku == bindparam("line_sku"), products.stock >= bindparam("line_quantity"))
        .values(stock=products.stock - bindparam("line_quantity"))
        .returning(products.sku, products.price_cents, products.currency)
        .cte("taken")
    )
    item = select(
        bindparam("reservation_id", type_=Uuid),
        taken.c.sku,
        bindparam("line_quantity", type_=Integer),
        taken.c.price_cents,
        taken.c.currency,
    )
    columns = ["reservation_id", "sku", "quantity", "unit_price_cents", "currency"]
    items = RESERVATION_ITEMS.c
    return insert(RESERVATION_ITEMS).from_select(columns, item).returning(items.unit_price_cents, items.currency)


ReservationColumns = tuple[uuid.UUID, ReservationStatus, datetime, datetime, str, str | None, int, int, str]
ReservationRow = Row[ReservationColumns]


def _with_items(status: ColumnElement[ReservationStatus] | None = None) -> Select[ReservationColumns]:
    """A reservation and its items, one row per item in sku order (one row with no item for none), as the columns
    `_read` takes. `status` stands for the stored one when a statement changes it in the same round trip."""
    reservations, items = RESERVATIONS_TABLE.c, RESERVATION_ITEMS.c
    return (
        select(
            reservations.id,
            reservations.status if status is None else status,
            reservations.expires_at,
            reservations.created_at,
            reservations.request_hash,
            items.sku,
            items.quantity,
            items.unit_price_cents,
            items.currency,
        )
        .outerjoin(RESERVATION_ITEMS, items.reservation_id == reservations.id)
        .order_by(items.sku)
    )


def _read(rows: Sequence[ReservationRow]) -> tuple[ReservationRead, str] | None:
    """The reservation those rows hold and its request hash; None for no row."""
    if not rows:
        return None
    first = rows[0]
    items = [
        ReservedItem(sku=row.sku, quantity=row.quantity, unit_price_cents=row.unit_price_cents, currency=row.currency)
        for row in rows
        if row.sku is not None
    ]
    read = ReservationRead(
        id=first.id, status=first.status, items=items, expires_at=first.expires_at, created_at=first.created_at
    )
    return read, first.request_hash


def _commit() -> Select[tuple[Any, ...]]:
    """held → committed and the reservation as it is then, in one statement. The `UPDATE` runs in a CTE, whose change
    the statement's own SELECT does not see: the status read is `committed` when the CTE changed the row, and the
    `changed` column says whether it did (for the metrics)."""
    reservations = RESERVATIONS_TABLE.c
    committed = (
        update(RESERVATIONS_TABLE)
        .where(reservations.id == bindparam("reservation_id"), reservations.status == ReservationStatus.HELD)
        .values(status=ReservationStatus.COMMITTED)
        .returning(reservations.id)
        .cte("committed")
    )
    changed = exists(select(committed.c.id))
    status = type_coerce(
        case((changed, literal(ReservationStatus.COMMITTED.value)), else_=reservations.status), reservations.status.type
    ).label("status")
    return (
        _with_items(status).add_columns(changed.label("changed")).where(reservations.id == bindparam("reservation_id"))
    )


_TAKE_LINE = _take_line()
_BY_KEY = _with_items().where(RESERVATIONS_TABLE.c.idempotency_key == bindparam("key"))
_BY_ID = _with_items().where(RESERVATIONS_TABLE.c.id == bindparam("reservation_id"))
_COMMIT = _commit()
_SKU_EXISTS = select(PRODUCTS.c.sku).where(PRODUCTS.c.sku == bindparam("line_sku"))


async def reserve(connection: AsyncConnection, *, key: str, items: list[LineItem], ttl: timedelta) -> ReserveResult:
    """Holds stock for `items` under an idempotency key: the same key and items give back the same reservation.

    Runs in the caller's transaction. The reservation row is inserted first with ON CONFLICT DO NOTHING, so of
    concurrent requests with one key exactly one takes stock; the others wait on the unique index and then read its
    reservation. Then each line, in sku order (one lock order for every transaction: no deadlocks), takes its stock
    and writes its item in one statement: a product a whole sale is buying stays locked from that statement to the
    commit right after it. A line that cannot be taken fails the request, and the transaction rolls back every line
    before it.
    """
    request_hash = fingerprint([item.model_dump() for item in items])
    reservation_id, expires_at = uuid.uuid4(), datetime.now(UTC) + ttl
    created_at = await connection.scalar(
        _NEW_RESERVATION, {"id": reservation_id, "key": key, "request_hash": request_hash, "expires_at": expires_at}
    )
    if created_at is None:
        existing = _read((await connection.execute(_BY_KEY, {"key": key})).all())
        assert existing is not None
        if existing[1] != request_hash:
            raise IdempotencyKeyReused("This Idempotency-Key was used with different items.")
        return ReserveResult(existing[0], created=False)

    reserved = []
    for line in sorted(items, key=lambda line: line.sku):
        # Not named after columns: an UPDATE would take a parameter named like one of its columns as a value to SET.
        params = {"reservation_id": reservation_id, "line_sku": line.sku, "line_quantity": line.quantity}
        taken = (await connection.execute(_TAKE_LINE, params)).one_or_none()
        if taken is None:
            RESERVATIONS.labels(outcome="rejected").inc()
            if await connection.scalar(_SKU_EXISTS, params) is None:
                raise UnknownSku(f"No product with sku {line.sku!r}.")
            raise InsufficientStock(f"Not enough stock of {line.sku!r} for {line.quantity} units.", sku=line.sku)
        price, currency = taken
        reserved.append(ReservedItem(sku=line.sku, quantity=line.quantity, unit_price_cents=price, currency=currency))
    RESERVATIONS.labels(outcome="held").inc()
    log.debug("reservation_held", reservation_id=str(reservation_id), lines=len(reserved))
    reservation = ReservationRead(
        id=reservation_id, status=ReservationStatus.HELD, items=reserved, expires_at=expires_at, created_at=created_at
    )
    return ReserveResult(reservation, created=True)


async def read_reservation(connection: AsyncConnection, reservation_id: uuid.UUID) -> ReservationRead:
    found = _read((await connection.execute(_BY_ID, {"reservation_id": reservation_id})).all())
    if found is None:
        raise ReservationNotFound(f"No reservation {reservation_id}.")
    return found[0]


async def get_reservation(session: AsyncSession, reservation_id: uuid.UUID, *, lock: bool = False) -> Reservation:
    statement = select(Reservation).where(Reservation.id == reservation_id)
    if lock:
        statement = statement.with_for_update()
    reservation = await session.scalar(statement)
    if reservation is None:
        raise ReservationNotFound(f"No reservation {reservation_id}.")
    return reservation


async def _return_stock(session: AsyncSession, reservation: Reservation, status: ReservationStatus) -> None:
    for item in reservation.items:
        await session.execute(
            update(Product).where(Product.sku == item.sku).values(stock=Product.stock + item.quantity)
        )
    reservation.status = status
    RESERVATIONS.labels(outcome=status.value).inc()


async def commit(connection: AsyncConnection, reservation_id: uuid.UUID) -> ReservationRead:
    """held → committed (sold), in one statement that commits on its own. Committing again is a no-op; a released or
    expired reservation is a conflict."""
    rows = (await connection.execute(_COMMIT, {"reservation_id": reservation_id})).all()
    found = _read(rows)
    if found is None:
        raise ReservationNotFound(f"No reservation {reservation_id}.")
    if rows[0].changed:
        RESERVATIONS.labels(outcome="committed").inc()
        log.debug("reservation_committed", reservation_id=str(reservation_id))
    reservation = found[0]
    if reservation.status != ReservationStatus.COMMITTED:
        raise InvalidReservationState(f"Reservation {reservation_id} is {reservation.status}; it cannot be committed.")
    return reservation


async def release(session: AsyncSession, reservation_id: uuid.UUID) -> Reservation:
    """held → released (stock back). Releasing again is a no-op; a committed reservation is a conflict."""
    reservation = await get_reservation(session, reservation_id, lock=True)
    if reservation.status == ReservationStatus.HELD:
        await _return_stock(session, reservation, ReservationStatus.RELEASED)
        log.debug("reservation_released", reservation_id=str(reservation_id))
    elif reservation.status == ReservationStatus.COMMITTED:
        raise InvalidReservationState(f"Reservation {reservation_id} is committed; it cannot be released.")
    await session.flush()
    return reservation


async def expire_due(session: AsyncSession, *, now: datetime | None = None, batch: int = 100) -> int:
    """Returns the stock of held reservations past their expiry. Safe to run on every replica at once."""
    due = await session.scalars(
        select(Reservation)
        .where(Reservation.status == ReservationStatus.HELD, Reservation.expires_at < (now or datetime.now(UTC)))
        .order_by(Reservation.expires_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    expired = 0
    for reservation in due.all():
        await _return_stock(session, reservation, ReservationStatus.EXPIRED)
        expired += 1
    if expired:
        await session.flush()
        log.info("reservations_expired", count=expired)
    return expired
