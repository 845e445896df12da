"""notify every change of products (stock, prices, rows) on a channel, for the product list cache

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Statement level: one notification per statement, and PostgreSQL folds identical ones of a transaction into one,
# delivered at commit (never for a rolled-back change). shop_catalog.freshness listens on this channel.
FUNCTION = """
CREATE FUNCTION notify_products_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('products_changed', '');
    RETURN NULL;
END
$$
"""
TRIGGER = """
CREATE TRIGGER products_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON products
    FOR EACH STATEMENT EXECUTE FUNCTION notify_products_changed()
"""


def upgrade() -> None:
    op.execute(FUNCTION)
    op.execute(TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER products_changed ON products")
    op.execute("DROP FUNCTION notify_products_changed()")
