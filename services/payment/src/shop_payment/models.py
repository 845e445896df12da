import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shopkit import new_metadata, status_column


class Base(DeclarativeBase):
    metadata = new_metadata()


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"
    CAPTURED = "captured"
    DECLINED = "declined"


class Payment(Base):
    """A payment is written as `pending` (with its stock reservation) before the provider is called.

    A pending payment is leased: whoever wrote or claimed it finishes it until `lease_expires_at`; after that a
    retry with its key or the sweeper may claim it.
    """

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_payments_user_id_idempotency_key"),
        CheckConstraint("status IN ('pending', 'captured', 'declined')", name="status_known"),
        Index("ix_payments_pending_lease", "lease_expires_at", postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[PaymentStatus] = mapped_column(status_column(PaymentStatus), index=True)
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    card_last4: Mapped[str] = mapped_column(String(4))
    card_token: Mapped[str] = mapped_column(String(64))
    reservation_id: Mapped[uuid.UUID]
    decline_reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    items: Mapped[list["PaymentItem"]] = relationship(
        lazy="selectin", order_by="PaymentItem.sku", cascade="all, delete-orphan"
    )


class PaymentItem(Base):
    __tablename__ = "payment_items"

    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)


class ProviderCard(Base):
    """The simulated provider's vault: a card number becomes a token; only the last four digits are kept."""

    __tablename__ = "provider_cards"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    last4: Mapped[str] = mapped_column(String(4))
    approves: Mapped[bool] = mapped_column(Boolean)


class ProviderCharge(Base):
    """One charge per payment id, ever: the provider is idempotent by payment id."""

    __tablename__ = "provider_charges"
    __table_args__ = (CheckConstraint("outcome IN ('approved', 'declined')", name="outcome_known"),)

    payment_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64))
    amount_cents: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
