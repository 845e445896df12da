"""Alembic scripts of the users database (`shop-users migrate`)."""
