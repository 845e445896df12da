"""Fixtures every test shares: one embedded PostgreSQL per session, fresh migrated databases per test, and the
four services wired together in-process (each one's HTTP client to another goes through that app's ASGI
transport, so every call between services is a real HTTP exchange with a real app, never a mock)."""

import os
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shop_catalog.main import create_app as create_catalog
from shop_catalog.settings import CatalogSettings
from shop_devtools.credentials import bearer, new_credentials
from shop_devtools.pg import EmbeddedPostgres
from shop_devtools.processes import free_port
from shop_devtools.provision import drop_database, ensure_database, provision
from shop_devtools.topology import BY_NAME, DATABASES
from shop_payment.main import create_app as create_payment
from shop_payment.settings import PaymentSettings
from shop_storefront.main import create_app as create_storefront
from shop_storefront.settings import StorefrontSettings
from shop_users.main import create_app as create_users
from shop_users.settings import UsersSettings

SERVICES = tuple(service.name for service in DATABASES)
"""The services with a database."""

CREDENTIALS = new_credentials()
"""The shop's own credentials for this test session, in the environment as a deployment gives them: every service
built in a test (in-process or as a process) reads them from there."""
AS_PAYMENT = bearer(CREDENTIALS["PAYMENT_CREDENTIAL"])
AS_STOREFRONT = bearer(CREDENTIALS["STOREFRONT_CREDENTIAL"])
AS_OPERATOR = bearer(CREDENTIALS["OPERATOR_CREDENTIAL"])


def pytest_configure(config: pytest.Config) -> None:
    os.environ.update(CREDENTIALS)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    with EmbeddedPostgres(tmp_path_factory.mktemp("postgres"), free_port(), fast_and_unsafe=True) as server:
        yield server


@pytest.fixture(scope="session")
def template_urls(postgres: EmbeddedPostgres) -> dict[str, str]:
    """Every service's database migrated once by Alembic; each test gets copies of these."""
    return provision(postgres.admin_url(), suffix="_template")


class ClonedDatabases(Mapping[str, str]):
    """Service name → URL of a fresh database cloned from the migrated template on first use
    (`CREATE DATABASE ... TEMPLATE`), so a test pays only for the databases it touches."""

    def __init__(self, server: EmbeddedPostgres) -> None:
        self.server = server
        self.suffix = "_" + uuid.uuid4().hex[:10]
        self.urls: dict[str, str] = {}

    def __getitem__(self, service: str) -> str:
        if service not in SERVICES:
            raise KeyError(service)
        if service not in self.urls:
            self.urls[service] = ensure_database(
                self.server.admin_url(),
                name=service + self.suffix,
                role=service,
                password=service,
                template=service + "_template",
            )
        return self.urls[service]

    def __iter__(self) -> Iterator[str]:
        return iter(SERVICES)

    def __len__(self) -> int:
        return len(SERVICES)

    def drop(self) -> None:
        for service in self.urls:
            drop_database(self.server.admin_url(), service + self.suffix)


@pytest.fixture
def database_urls(postgres: EmbeddedPostgres, template_urls: dict[str, str]) -> Iterator[ClonedDatabases]:
    """Fresh databases for this test. Clones rather than a rolled-back transaction because the services commit
    across several connections and the concurrency tests need real row locks between them."""
    databases = ClonedDatabases(postgres)
    try:
        yield databases
    finally:
        databases.drop()


Fault = Exception | int
"""An exception the transport raises, or a status it answers with, instead of passing the request on."""


class FaultInjector(httpx.AsyncBaseTransport):
    """Passes requests to a real app, except that the next queued faults happen first; records what it saw."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.faults: list[Fault] = []
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.faults:
            return await self.inner.handle_async_request(request)
        fault = self.faults.pop(0)
        if isinstance(fault, Exception):
            raise fault
        problem = {"type": "about:blank", "title": "Injected", "status": fault, "detail": "injected fault"}
        return httpx.Response(fault, json=problem, headers={"content-type": "application/problem+json"})


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Runs the app's lifespan (engine, clients, background tasks) around the test."""
    async with app.router.lifespan_context(app):
        yield app


def client_for(app: FastAPI, name: str, headers: Mapping[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}", headers=headers)


@dataclass
class Shop:
    catalog: httpx.AsyncClient
    """With payment's credential; the inventory is read with `headers=AS_OPERATOR`."""
    users: httpx.AsyncClient
    payment: httpx.AsyncClient
    storefront: httpx.AsyncClient
    apps: dict[str, FastAPI]
    database_urls: Mapping[str, str]
    wires: Mapping[str, FaultInjector]
    """The storefront's wires to each service: what the gateway sent, and faults to inject on them."""


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path


@asynccontextmanager
async def open_shop(database_urls: Mapping[str, str], **payment_settings: object) -> AsyncIterator[Shop]:
    """The four services in-process, wired to each other over ASGI transports, lifespans running."""
    apps: dict[str, FastAPI] = {}

    def upstreams_of(service: str) -> dict[str, httpx.AsyncBaseTransport]:
        return {name: httpx.ASGITransport(app=apps[name]) for name in BY_NAME[service].upstreams}

    def gateway_wires() -> dict[str, FaultInjector]:
        return {name: FaultInjector(transport) for name, transport in upstreams_of("storefront").items()}

    apps["catalog"] = create_catalog(CatalogSettings(database_url=database_urls["catalog"]))
    apps["users"] = create_users(UsersSettings(database_url=database_urls["users"]))
    settings: dict[str, Any] = {"provider_latency_ms": 0, **payment_settings}
    apps["payment"] = create_payment(
        PaymentSettings(database_url=database_urls["payment"], **settings), transports=upstreams_of("payment")
    )
    wires = gateway_wires()
    apps["storefront"] = create_storefront(StorefrontSettings(), transports=wires)
    async with AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(running(app))
        # The catalog as payment calls it: its reservations answer payment's credential only.
        identities = {"catalog": AS_PAYMENT}
        clients = {
            name: await stack.enter_async_context(client_for(app, name, identities.get(name)))
            for name, app in apps.items()
        }
        yield Shop(**clients, apps=apps, database_urls=database_urls, wires=wires)


@pytest.fixture
async def shop(database_urls: Mapping[str, str]) -> AsyncIterator[Shop]:
    async with open_shop(database_urls) as opened:
        yield opened


async def register_and_login(users: httpx.AsyncClient, email: str | None = None) -> dict[str, str]:
    """A new customer; returns the Authorization header of their token."""
    email = email or f"customer-{uuid.uuid4().hex[:12]}@example.com"
    created = await users.post("/users", json={"email": email, "password": "correct horse battery", "name": "Ada"})
    assert created.status_code == 201, created.text
    token = await users.post("/tokens", json={"email": email, "password": "correct horse battery"})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}
