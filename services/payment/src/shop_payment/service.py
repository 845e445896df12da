"""Payments as a persisted state machine: pending → captured | declined, finished exactly once.

The order of the steps is what makes a crash harmless:
1. stock is reserved in catalog under a key derived from (user, Idempotency-Key): a retry gets the same reservation;
2. the payment row is committed as `pending` with that reservation, unique per (user, Idempotency-Key);
3. whoever holds the row lock (`SELECT ... FOR UPDATE`) charges the provider (idempotent by payment id), commits or
   releases the reservation, and moves the row to its final status in the same transaction.
If the process dies anywhere, PostgreSQL drops its lock and the row stays `pending`: a retry with the key (on any
replica) or the sweeper (`FOR UPDATE SKIP LOCKED`, only rows older than the lease) does step 3 again, and every part
of step 3 gives the same answer the second time.
"""

import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_payment.catalog import CatalogClient
from shop_payment.exceptions import IdempotencyKeyReused, PaymentNotFound, PaymentPending
from shop_payment.metrics import OLDEST_PENDING, PAYMENTS, RECOVERED
from shop_payment.models import Payment, PaymentItem, PaymentStatus
from shop_payment.provider import SimulatedProvider
from shop_payment.schemas import PaymentCreate
from shopkit import ShopError, fingerprint

log = structlog.get_logger(__name__)


def request_hash(body: PaymentCreate) -> str:
    items = sorted((item.model_dump() for item in body.items), key=lambda item: item["sku"])
    return fingerprint({"items": items, "card": hashlib.sha256(body.card_number.encode()).hexdigest()})


def reservation_key(user_id: uuid.UUID, key: str) -> str:
    return "payment:" + hashlib.sha256(f"{user_id}\x00{key}".encode()).hexdigest()


class Payments:
    def __init__(
        self,
        maker: async_sessionmaker[AsyncSession],
        catalog: CatalogClient,
        provider: SimulatedProvider,
        *,
        lease: timedelta,
        lock_timeout_seconds: float,
    ) -> None:
        self.maker = maker
        self.catalog = catalog
        self.provider = provider
        self.lease = lease
        self.lock_timeout_ms = int(lock_timeout_seconds * 1000)

    async def _find(self, user_id: uuid.UUID, key: str) -> Payment | None:
        async with self.maker() as session:
            payment: Payment | None = await session.scalar(
                select(Payment).where(Payment.user_id == user_id, Payment.idempotency_key == key)
            )
            return payment

    async def create(self, user_id: uuid.UUID, key: str, body: PaymentCreate) -> Payment:
        """Pays for `body` once per (user, key); returns the payment in its final status."""
        fingerprint_ = request_hash(body)
        existing = await self._find(user_id, key)
        if existing is None:
            token = await self.provider.tokenize(body.card_number)
            reservation = await self.catalog.reserve(reservation_key(user_id, key), body.items)
            payment_id = uuid.uuid4()
            async with self.maker() as session, session.begin():
                inserted = await session.scalar(
                    insert(Payment)
                    .values(
                        id=payment_id,
                        user_id=user_id,
                        idempotency_key=key,
                        request_hash=fingerprint_,
                        status=PaymentStatus.PENDING,
                        amount_cents=sum(line.quantity * line.unit_price_cents for line in reservation.lines),
                        currency=reservation.lines[0].currency,
                        card_last4=body.card_number[-4:],
                        card_token=token,
                        reservation_id=reservation.id,
                    )
                    .on_conflict_do_nothing(constraint="uq_payments_user_id_idempotency_key")
                    .returning(Payment.id)
                )
                if inserted is not None:
                    session.add_all(
                        PaymentItem(
                            payment_id=payment_id,
                            sku=line.sku,
                            quantity=line.quantity,
                            unit_price_cents=line.unit_price_cents,
                        )
                        for line in reservation.lines
                    )
                    log.info("payment_pending", payment_id=str(payment_id), reservation_id=str(reservation.id))
            if inserted is None:  # a concurrent request with the same key won the insert
                existing = await self._find(user_id, key)
                assert existing is not None
            else:
                return await self._settle(payment_id)
        if existing.request_hash != fingerprint_:
            raise IdempotencyKeyReused("This Idempotency-Key was already used with a different request.")
        return await self._settle(existing.id, retry=True)

    async def _settle(self, payment_id: uuid.UUID, *, retry: bool = False) -> Payment:
        """Finishes the payment unless it is final already; waits for a concurrent owner instead of racing it."""
        try:
            async with self.maker() as session, session.begin():
                await session.execute(text(f"SET LOCAL lock_timeout = {self.lock_timeout_ms}"))
                payment = await session.scalar(
                    select(Payment)
                    .where(Payment.id == payment_id)
                    .with_for_update()
                    .execution_options(populate_existing=True)
                )
                assert payment is not None
                if payment.status == PaymentStatus.PENDING:
                    await self._finish_locked(session, payment)
                    if retry:
                        RECOVERED.labels(by="retry").inc()
                return payment
        except ShopError as exc:
            log.warning("payment_left_pending", payment_id=str(payment_id), reason=exc.detail)
            raise PaymentPending(
                "The payment is recorded as pending and will be finished; retry with the same Idempotency-Key.",
                payment_id=str(payment_id),
            ) from exc
        except DBAPIError as exc:
            log.warning("payment_left_pending", payment_id=str(payment_id), error_type=type(exc.orig).__name__)
            raise PaymentPending(
                "The payment is busy or the database is unavailable; retry with the same Idempotency-Key.",
                payment_id=str(payment_id),
            ) from exc

    async def _finish_locked(self, session: AsyncSession, payment: Payment) -> None:
        outcome = await self.provider.charge(payment.id, payment.card_token, payment.amount_cents)
        approved = outcome == "approved"
        reservation_status = await self.catalog.finish(payment.reservation_id, sold=approved)
        if approved and reservation_status == "committed":
            payment.status, payment.decline_reason = PaymentStatus.CAPTURED, None
        elif approved:  # the reservation expired before the capture could be recorded: the charge is voided
            payment.status, payment.decline_reason = PaymentStatus.DECLINED, "reservation_expired"
            log.error("capture_voided", payment_id=str(payment.id), reservation_status=reservation_status)
        else:
            payment.status, payment.decline_reason = PaymentStatus.DECLINED, "card_declined"
        payment.completed_at = payment.updated_at = datetime.now(UTC)
        await session.flush()
        PAYMENTS.labels(status=payment.status).inc()
        log.info("payment_" + payment.status, payment_id=str(payment.id), amount_cents=payment.amount_cents)

    async def sweep_once(self) -> bool:
        """Finishes the oldest pending payment whose owner is gone; returns whether there was one."""
        async with self.maker() as session, session.begin():
            oldest = await session.scalar(
                select(func.min(Payment.created_at)).where(Payment.status == PaymentStatus.PENDING)
            )
            OLDEST_PENDING.set((datetime.now(UTC) - oldest).total_seconds() if oldest else 0)
            payment = await session.scalar(
                select(Payment)
                .where(Payment.status == PaymentStatus.PENDING, Payment.updated_at < datetime.now(UTC) - self.lease)
                .order_by(Payment.created_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if payment is None:
                return False
            log.info("payment_recovery", payment_id=str(payment.id), by="sweeper")
            await self._finish_locked(session, payment)
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
