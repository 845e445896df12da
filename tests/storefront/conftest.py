"""The storefront in front of the real catalog and users apps, with faults injected on the wire between them."""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shop_catalog.main import create_app as create_catalog
from shop_catalog.settings import CatalogSettings
from shop_storefront.main import create_app
from shop_storefront.settings import StorefrontSettings
from shop_users.main import create_app as create_users
from shop_users.settings import UsersSettings
from tests.conftest import AS_PAYMENT, FaultInjector, client_for, running

NOTHING_LISTENS = "http://127.0.0.1:9"
"""The discard port: nothing listens there, so a connection is refused at once."""


@asynccontextmanager
async def storefront_client(
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A running storefront; every upstream without a transport points where nothing listens."""
    settings = StorefrontSettings(
        **{
            "catalog_url": "http://catalog" if transports and "catalog" in transports else NOTHING_LISTENS,
            "users_url": "http://users" if transports and "users" in transports else NOTHING_LISTENS,
            "payment_url": NOTHING_LISTENS,
            **overrides,
        }
    )
    app = create_app(settings, transports=transports)
    async with running(app), client_for(app, "storefront") as client:
        yield client


@pytest.fixture
async def catalog_app(database_urls: Mapping[str, str]) -> AsyncIterator[FastAPI]:
    async with running(create_catalog(CatalogSettings(database_url=database_urls["catalog"]))) as app:
        yield app


@pytest.fixture
async def users_app(database_urls: Mapping[str, str]) -> AsyncIterator[FastAPI]:
    async with running(create_users(UsersSettings(database_url=database_urls["users"]))) as app:
        yield app


@pytest.fixture
async def catalog(catalog_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The catalog called directly, to compare with what the storefront answers, as payment calls it."""
    async with client_for(catalog_app, "catalog", AS_PAYMENT) as client:
        yield client


@pytest.fixture
def catalog_wire(catalog_app: FastAPI) -> FaultInjector:
    return FaultInjector(httpx.ASGITransport(app=catalog_app))


@pytest.fixture
def users_wire(users_app: FastAPI) -> FaultInjector:
    return FaultInjector(httpx.ASGITransport(app=users_app))


@pytest.fixture
async def storefront(catalog_wire: FaultInjector) -> AsyncIterator[httpx.AsyncClient]:
    """The storefront in front of the real catalog; users and payment are down."""
    async with storefront_client({"catalog": catalog_wire}) as client:
        yield client


@pytest.fixture
async def offline_storefront() -> AsyncIterator[httpx.AsyncClient]:
    """The storefront with every backend down."""
    async with storefront_client() as client:
        yield client
