"""Payments as a persisted state machine: pending → captured | declined, finished exactly once.

The order of the steps is what makes a crash harmless:
1. stock is reserved in catalog under a key derived from (user, Idempotency-Key): a retry gets the same reservation;
2. the payment row is committed as `pending` with that reservation, unique per (user, Idempotency-Key), and leased
   to the request that wrote it (`lease_expires_at`);
3. the lease holder charges the provider (idempotent by payment id) and commits or releases the reservation with no
   transaction open and no pooled connection held, then moves the row to its final status with a conditional
   `UPDATE ... WHERE status = 'pending'`: of everyone who ever gets this far, exactly one changes the row.
If the process dies anywhere, the row stays `pending` until its lease runs out; then a retry with the key (on any
replica) or the sweeper (`FOR UPDATE SKIP LOCKED`) claims it with a conditional `UPDATE ... RETURNING` and does
step 3 again, and every part of step 3 gives the same answer the second time. A settlement holds at most one
database connection at a time, and none while it waits for the provider or the catalog, so a burst of checkouts
cannot starve the pool.
"""

import asyncio
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import ARRAY, ColumnElement, Integer, Interval, Select, String, bindparam, func, select, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import ReturningUpdate

from shop_contracts import ReservationStatus
from shop_payment.catalog import CatalogClient
from shop_payment.exceptions import IdempotencyKeyReused, PaymentNotFound, PaymentPending
from shop_payment.metrics import OLDEST_PENDING, PAYMENTS, RECOVERED
from shop_payment.models import Payment, PaymentItem, PaymentStatus
from shop_payment.provider import SimulatedProvider
from shop_payment.schemas import PaymentCreate
from shopkit import ShopError, autocommit, autocommit_engine, deadlines, fingerprint

log = structlog.get_logger(__name__)


def request_hash(body: PaymentCreate) -> str:
    items = sorted((item.model_dump() for item in body.items), key=lambda item: item["sku"])
    return fingerprint({"items": items, "card": hashlib.sha256(body.card_number.encode()).hexdigest()})


def reservation_key(user_id: uuid.UUID, key: str) -> str:
    return "payment:" + hashlib.sha256(f"{user_id}\x00{key}".encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    """What finishing a leased pending payment needs; taken from the row when it was written or claimed."""

    id: uuid.UUID
    card_token: str
    amount_cents: int
    reservation_id: uuid.UUID


POLL_SECONDS = 0.05

# The hot statements are built once, with bind parameters: building the pending insert cost more CPU (0.5 ms) than
# PostgreSQL spends running it, and a statement built once keeps its cache key for the compiled form.
_NOW = func.now()
_PENDING_AND_LEASE_EXPIRED = (Payment.status == PaymentStatus.PENDING, Payment.lease_expires_at < _NOW)

_FIND = select(Payment).where(Payment.user_id == bindparam("user_id"), Payment.idempotency_key == bindparam("key"))


def _write_pending() -> Select[tuple[datetime]]:
    """One statement, so one round trip and atomic with no transaction around it: the payment row unless its
    (user, key) exists, and its items only if the row was written. It returns the row's `created_at`, or no row."""
    columns = (
        "id user_id idempotency_key request_hash status amount_cents currency card_last4 card_token reservation_id"
    )
    payment = (
        insert(Payment)
        .values(
            {name: bindparam(name) for name in columns.split()}
            | {"lease_expires_at": _NOW + bindparam("lease", type_=Interval)}
        )
        .on_conflict_do_nothing(constraint="uq_payments_user_id_idempotency_key")
        .returning(Payment.id, Payment.created_at)
        .cte("payment")
    )
    lines = (
        func.unnest(
            bindparam("skus", type_=ARRAY(String)),
            bindparam("quantities", type_=ARRAY(Integer)),
            bindparam("unit_prices", type_=ARRAY(Integer)),
        )
        .table_valued("sku", "quantity", "unit_price_cents")
        .render_derived()
    )
    items = insert(PaymentItem).from_select(
        ["payment_id", "sku", "quantity", "unit_price_cents"],
        select(payment.c.id, lines.c.sku, lines.c.quantity, lines.c.unit_price_cents).select_from(
            payment.join(lines, true())
        ),
    )
    return select(payment.c.created_at).add_cte(items.cte("items"))


LeaseUpdate = ReturningUpdate[uuid.UUID, str, int, uuid.UUID]


def _take_lease(which: ColumnElement[bool]) -> LeaseUpdate:
    return (
        update(Payment)
        .where(which, *_PENDING_AND_LEASE_EXPIRED)
        .values(lease_expires_at=_NOW + bindparam("lease", type_=Interval), updated_at=_NOW)
        .returning(Payment.id, Payment.card_token, Payment.amount_cents, Payment.reservation_id)
    )


_WRITE_PENDING = _write_pending()
_TAKE_LEASE = _take_lease(Payment.id == bindparam("payment_id"))
"""A retry claims the payment of its key once the lease ran out."""
_TAKE_ABANDONED = _take_lease(
    Payment.id
    == select(Payment.id)
    .where(*_PENDING_AND_LEASE_EXPIRED)
    .order_by(Payment.created_at)
    .limit(1)
    .with_for_update(skip_locked=True)
    .scalar_subquery()
)
"""The sweeper claims the oldest pending payment whose lease ran out."""
_FINISH = (
    update(Payment)
    .where(Payment.id == bindparam("payment_id"), Payment.status == PaymentStatus.PENDING)
    .values(status=bindparam("status"), decline_reason=bindparam("reason"), completed_at=_NOW, updated_at=_NOW)
    .returning(Payment.completed_at)
)


class Payments:
    def __init__(
        self,
        maker: async_sessionmaker[AsyncSession],
        catalog: CatalogClient,
        provider: SimulatedProvider,
        *,
        lease: timedelta,
        pending_wait_seconds: float,
    ) -> None:
        self.maker = maker
        self.single = autocommit(maker)
        """For single reads of payments: no BEGIN and COMMIT round trips around them."""
        self.statements = autocommit_engine(maker.kw["bind"])
        """For the single statements that write: no session either."""
        self.catalog = catalog
        self.provider = provider
        self.lease = lease
        self.pending_wait_seconds = pending_wait_seconds

    async def _find(self, user_id: uuid.UUID, key: str) -> Payment | None:
        async with self.single() as session:
            payment: Payment | None = await session.scalar(_FIND, {"user_id": user_id, "key": key})
            return payment

    async def _load(self, payment_id: uuid.UUID) -> Payment:
        async with self.single() as session:
            return await session.get_one(Payment, payment_id)

    async def create(self, user_id: uuid.UUID, key: str, body: PaymentCreate) -> Payment:
        """Pays for `body` once per (user, key); returns the payment in its final status."""
        fingerprint_ = request_hash(body)
        existing = await self._find(user_id, key)
        if existing is None:
            token = await self.provider.tokenize(body.card_number)
            reservation = await self.catalog.reserve(reservation_key(user_id, key), body.items)
            claim = Claim(
                id=uuid.uuid4(),
                card_token=token,
                amount_cents=sum(line.quantity * line.unit_price_cents for line in reservation.lines),
                reservation_id=reservation.id,
            )
            lines, currency, card_last4 = reservation.lines, reservation.lines[0].currency, body.card_number[-4:]
            async with self.statements.connect() as connection:
                inserted = await connection.scalar(
                    _WRITE_PENDING,
                    {
                        "id": claim.id,
                        "user_id": user_id,
                        "idempotency_key": key,
                        "request_hash": fingerprint_,
                        "status": PaymentStatus.PENDING,
                        "amount_cents": claim.amount_cents,
                        "currency": currency,
                        "card_last4": card_last4,
                        "card_token": token,
                        "reservation_id": reservation.id,
                        "lease": self.lease,
                        "skus": [line.sku for line in lines],
                        "quantities": [line.quantity for line in lines],
                        "unit_prices": [line.unit_price_cents for line in lines],
                    },
                )
            if inserted is not None:  # written by this request, so leased to it; what it wrote is what it returns
                log.debug("payment_pending", payment_id=str(claim.id), reservation_id=str(reservation.id))
                written = Payment(
                    id=claim.id,
                    status=PaymentStatus.PENDING,
                    amount_cents=claim.amount_cents,
                    currency=currency,
                    card_last4=card_last4,
                    created_at=inserted,
                    items=[
                        PaymentItem(sku=line.sku, quantity=line.quantity, unit_price_cents=line.unit_price_cents)
                        for line in lines
                    ],
                )
                return await self._settle(claim, written)
            existing = await self._find(user_id, key)  # a concurrent request with the same key won the insert
            assert existing is not None
        if existing.request_hash != fingerprint_:
            raise IdempotencyKeyReused("This Idempotency-Key was already used with a different request.")
        if existing.status != PaymentStatus.PENDING:
            return existing
        return await self._finish_or_wait(existing.id)

    async def _take_lease(self, statement: LeaseUpdate, **params: object) -> Claim | None:
        """Takes the lease of the pending payment `statement` selects if its lease ran out; None when there is none
        (final, or leased to a live owner)."""
        async with self.statements.connect() as connection:
            row = (await connection.execute(statement, {"lease": self.lease, **params})).one_or_none()
        return Claim(*row) if row is not None else None

    async def _finish_or_wait(self, payment_id: uuid.UUID) -> Payment:
        """A retry: finishes the payment if its owner is gone, else waits a little for the owner to finish it.

        Waiting holds no connection between looks; it ends at `pending_wait_seconds` or the request's deadline,
        whichever comes first, with 503 and Retry-After: the client retries with the same key.
        """
        give_up_at = asyncio.get_running_loop().time() + deadlines.bounded(self.pending_wait_seconds)
        try:
            while True:
                claim = await self._take_lease(_TAKE_LEASE, payment_id=payment_id)
                if claim is not None:
                    log.info("payment_recovery", payment_id=str(payment_id), by="retry")
                    payment = await self._settle(claim)
                    RECOVERED.labels(by="retry").inc()
                    return payment
                payment = await self._load(payment_id)
                if payment.status != PaymentStatus.PENDING:
                    return payment
                if asyncio.get_running_loop().time() + POLL_SECONDS > give_up_at:
                    break
                await asyncio.sleep(POLL_SECONDS)
        except (DBAPIError, PoolTimeout) as exc:
            raise self._pending(payment_id, exc) from exc
        log.warning("payment_still_pending", payment_id=str(payment_id))
        raise PaymentPending(
            "The payment is being finished by another request; retry with the same Idempotency-Key.",
            payment_id=str(payment_id),
        )

    @staticmethod
    def _pending(payment_id: uuid.UUID, exc: Exception) -> PaymentPending:
        if isinstance(exc, ShopError):
            log.warning("payment_left_pending", payment_id=str(payment_id), reason=exc.detail)
            detail = "The payment is recorded as pending and will be finished; retry with the same Idempotency-Key."
        else:
            error_type = type(getattr(exc, "orig", None) or exc).__name__
            log.warning("payment_left_pending", payment_id=str(payment_id), error_type=error_type)
            detail = "The database is unavailable; the payment will be finished: retry with the same Idempotency-Key."
        return PaymentPending(detail, payment_id=str(payment_id))

    async def _settle(self, claim: Claim, written: Payment | None = None) -> Payment:
        """Finishes a payment this process holds the lease of and returns it (`written`, when the caller has it in
        hand, completed in place). On failure it stays pending for a retry or the sweeper, and the client is told
        to retry with the same key."""
        try:
            outcome = await self.provider.charge(claim.id, claim.card_token, claim.amount_cents)
            approved = outcome == "approved"
            reservation_status = await self.catalog.finish(claim.reservation_id, sold=approved)
            if approved and reservation_status == ReservationStatus.COMMITTED:
                status, reason = PaymentStatus.CAPTURED, None
            elif approved:  # the reservation expired before the capture could be recorded: the charge is voided
                status, reason = PaymentStatus.DECLINED, "reservation_expired"
                log.error("capture_voided", payment_id=str(claim.id), reservation_status=reservation_status)
            else:
                status, reason = PaymentStatus.DECLINED, "card_declined"
            async with self.statements.connect() as connection:
                completed_at = await connection.scalar(
                    _FINISH, {"payment_id": claim.id, "status": status, "reason": reason}
                )
            if completed_at is None:  # someone racing this request finished it first, with the same outcome
                return await self._load(claim.id)
        except (ShopError, DBAPIError, PoolTimeout) as exc:
            raise self._pending(claim.id, exc) from exc
        PAYMENTS.labels(status=status).inc()
        log.debug("payment_" + status, payment_id=str(claim.id), amount_cents=claim.amount_cents)
        if written is None:
            return await self._load(claim.id)
        written.status, written.decline_reason, written.completed_at = status, reason, completed_at
        return written

    async def sweep_once(self) -> bool:
        """Finishes the oldest pending payment whose lease ran out (its owner is gone); says whether there was one."""
        async with self.single() as session:
            oldest = await session.scalar(
                select(func.min(Payment.created_at)).where(Payment.status == PaymentStatus.PENDING)
            )
        OLDEST_PENDING.set((datetime.now(UTC) - oldest).total_seconds() if oldest else 0)
        claim = await self._take_lease(_TAKE_ABANDONED)
        if claim is None:
            return False
        log.info("payment_recovery", payment_id=str(claim.id), by="sweeper")
        await self._settle(claim)
        RECOVERED.labels(by="sweeper").inc()
        return True

    async def get(self, user_id: uuid.UUID, payment_id: uuid.UUID) -> Payment:
        async with self.maker() as session:
            payment = await session.get(Payment, payment_id)
            if payment is None or payment.user_id != user_id:  # another user's payment does not exist for you
                raise PaymentNotFound(f"No payment {payment_id}.")
            return payment

    async def list(self, user_id: uuid.UUID, *, limit: int, offset: int) -> tuple[Sequence[Payment], int]:
        async with self.maker() as session:
            total = await session.scalar(select(func.count()).select_from(Payment).where(Payment.user_id == user_id))
            rows = await session.scalars(
                select(Payment)
                .where(Payment.user_id == user_id)
                .order_by(Payment.created_at.desc(), Payment.id)
                .limit(limit)
                .offset(offset)
            )
            return rows.all(), total or 0
