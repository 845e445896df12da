"""Fixtures of the users tests: settings and a running users app on a fresh database."""

from collections.abc import AsyncIterator, Mapping

import httpx
import pytest
from fastapi import FastAPI

from shop_users.main import create_app
from shop_users.security import TokenKeys
from shop_users.settings import UsersSettings
from shop_users.state import UsersState
from shopkit import state_of
from tests.conftest import client_for, running


@pytest.fixture
def database_url(database_urls: Mapping[str, str]) -> str:
    return database_urls["users"]


@pytest.fixture
def settings(database_url: str) -> UsersSettings:
    return UsersSettings(database_url=database_url, environment="development", jwt_private_key=None)


@pytest.fixture
async def app(settings: UsersSettings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with running(app):
        yield app


@pytest.fixture
async def users(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, "users") as client:
        yield client


@pytest.fixture
def keys(app: FastAPI) -> TokenKeys:
    return state_of(app).own(UsersState).keys
