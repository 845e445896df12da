"""Models and migrations agree: each service's database, migrated to head by Alembic, compared with its models
by Alembic's autogenerate (tables, columns and their types, nullability, indexes, unique constraints, foreign
keys). A model changed without a migration, or a migration the models do not describe, fails here."""

from collections.abc import Mapping
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine

from shop_catalog.models import Base as CatalogBase
from shop_payment.models import Base as PaymentBase
from shop_users.models import Base as UsersBase
from shopkit.db import driver_url

MODELS = {"catalog": CatalogBase.metadata, "users": UsersBase.metadata, "payment": PaymentBase.metadata}


def drift(database_url: str, metadata: MetaData) -> list[Any]:
    engine = create_engine(driver_url(database_url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


@pytest.mark.parametrize("service", sorted(MODELS))
def test_the_migrated_database_is_what_the_models_describe(database_urls: Mapping[str, str], service: str) -> None:
    assert drift(database_urls[service], MODELS[service]) == []
