"""Products and stock reservations. Stock only moves inside a transaction that also records why it moved."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import case, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shop_catalog.exceptions import (
    IdempotencyKeyReused,
    InsufficientStock,
    InvalidReservationState,
    ProductNotFound,
    ReservationNotFound,
    UnknownSku,
)
from shop_catalog.metrics import RESERVATIONS
from shop_catalog.models import Product, Reservation, ReservationItem, ReservationStatus
from shop_catalog.schemas import InventoryRead, LineItem
from shopkit import fingerprint

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ReserveResult:
    reservation: Reservation
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


async def reserve(session: AsyncSession, *, key: str, items: list[LineItem], ttl: timedelta) -> ReserveResult:
    """Holds stock for `items` under an idempotency key: the same key and items give back the same reservation.

    The reservation row is inserted first with ON CONFLICT DO NOTHING, so of concurrent requests with one key
    exactly one takes stock; the others wait on the unique index and then read its reservation. Stock is taken
    last, each product row with a conditional `UPDATE ... WHERE stock >= n`: a product a whole sale is buying stays
    locked only from that statement to the commit right after it, not for the whole reservation.
    """
    request_hash = fingerprint([item.model_dump() for item in items])
    expires_at = datetime.now(UTC) + ttl
    inserted = (
        await session.execute(
            insert(Reservation)
            .values(
                id=uuid.uuid4(),
                idempotency_key=key,
                request_hash=request_hash,
                status=ReservationStatus.HELD,
                expires_at=expires_at,
            )
            .on_conflict_do_nothing(index_elements=[Reservation.idempotency_key])
            .returning(Reservation.id, Reservation.created_at)
        )
    ).one_or_none()
    if inserted is None:
        existing = await session.scalar(select(Reservation).where(Reservation.idempotency_key == key))
        assert existing is not None
        if existing.request_hash != request_hash:
            raise IdempotencyKeyReused("This Idempotency-Key was used with different items.")
        return ReserveResult(existing, created=False)

    lines = sorted(items, key=lambda line: line.sku)  # one lock order for every transaction: no deadlocks
    prices = {
        sku: (price, currency)
        for sku, price, currency in await session.execute(
            select(Product.sku, Product.price_cents, Product.currency).where(Product.sku.in_([i.sku for i in lines]))
        )
    }
    if unknown := next((line.sku for line in lines if line.sku not in prices), None):
        RESERVATIONS.labels(outcome="rejected").inc()
        raise UnknownSku(f"No product with sku {unknown!r}.")
    reserved = [
        ReservationItem(
            reservation_id=inserted.id,
            sku=line.sku,
            quantity=line.quantity,
            unit_price_cents=prices[line.sku][0],
            currency=prices[line.sku][1],
        )
        for line in lines
    ]
    session.add_all(reserved)
    await session.flush()
    for line in lines:
        taken = await session.scalar(
            update(Product)
            .where(Product.sku == line.sku, Product.stock >= line.quantity)
            .values(stock=Product.stock - line.quantity)
            .returning(Product.sku)
        )
        if taken is None:
            RESERVATIONS.labels(outcome="rejected").inc()
            raise InsufficientStock(f"Not enough stock of {line.sku!r} for {line.quantity} units.", sku=line.sku)
    RESERVATIONS.labels(outcome="held").inc()
    log.info("reservation_held", reservation_id=str(inserted.id), lines=len(lines))
    reservation = Reservation(
        id=inserted.id,
        idempotency_key=key,
        request_hash=request_hash,
        status=ReservationStatus.HELD,
        expires_at=expires_at,
        created_at=inserted.created_at,
        items=reserved,
    )
    return ReserveResult(reservation, created=True)


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


async def commit(session: AsyncSession, reservation_id: uuid.UUID) -> Reservation:
    """held → committed (sold). Committing again is a no-op; a released or expired reservation is a conflict."""
    reservation = await get_reservation(session, reservation_id, lock=True)
    if reservation.status == ReservationStatus.HELD:
        reservation.status = ReservationStatus.COMMITTED
        RESERVATIONS.labels(outcome="committed").inc()
        log.info("reservation_committed", reservation_id=str(reservation_id))
    elif reservation.status != ReservationStatus.COMMITTED:
        raise InvalidReservationState(f"Reservation {reservation_id} is {reservation.status}; it cannot be committed.")
    await session.flush()
    return reservation


async def release(session: AsyncSession, reservation_id: uuid.UUID) -> Reservation:
    """held → released (stock back). Releasing again is a no-op; a committed reservation is a conflict."""
    reservation = await get_reservation(session, reservation_id, lock=True)
    if reservation.status == ReservationStatus.HELD:
        await _return_stock(session, reservation, ReservationStatus.RELEASED)
        log.info("reservation_released", reservation_id=str(reservation_id))
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
