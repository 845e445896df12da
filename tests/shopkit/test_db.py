"""shopkit.db: the URL a Kubernetes Secret holds, as SQLAlchemy's driver takes it."""

import pytest

from shopkit import driver_url


def test_driver_url() -> None:
    assert driver_url("postgresql://u:p@h:5432/db") == "postgresql+psycopg://u:p@h:5432/db"
    assert driver_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(ValueError, match="postgresql"):
        driver_url("mysql://u@h/db")
