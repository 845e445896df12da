"""payments, their items and the simulated provider's vault and charges

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("card_last4", sa.String(4), nullable=False),
        sa.Column("card_token", sa.String(64), nullable=False),
        sa.Column("reservation_id", sa.Uuid(), nullable=False),
        sa.Column("decline_reason", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_payments_user_id_idempotency_key"),
        sa.CheckConstraint("status IN ('pending', 'captured', 'declined')", name="status_known"),
    )
    op.create_table(
        "payment_items",
        sa.Column("payment_id", sa.Uuid(), sa.ForeignKey("payments.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_cents", sa.Integer(), nullable=False),
    )
    op.create_table(
        "provider_cards",
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column("last4", sa.String(4), nullable=False),
        sa.Column("approves", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "provider_charges",
        sa.Column("payment_id", sa.Uuid(), primary_key=True),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("outcome IN ('approved', 'declined')", name="outcome_known"),
    )


def downgrade() -> None:
    op.drop_table("provider_charges")
    op.drop_table("provider_cards")
    op.drop_table("payment_items")
    op.drop_table("payments")
