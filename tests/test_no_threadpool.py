"""Every route and dependency of every service is `async def`. FastAPI runs a plain `def` in a thread pool of 40:
each request pays a thread hop for it, and a burst of 128 customers queues for those threads before any work."""

import inspect
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from shop_catalog.main import create_app as create_catalog
from shop_catalog.settings import CatalogSettings
from shop_payment.main import create_app as create_payment
from shop_payment.settings import PaymentSettings
from shop_storefront.main import create_app as create_storefront
from shop_storefront.settings import StorefrontSettings
from shop_users.main import create_app as create_users
from shop_users.settings import UsersSettings

CHAOS = {"chaos_enabled": True, "chaos_token": "a-token-for-the-test"}


def _calls(dependant: Dependant) -> Iterator[object]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


@pytest.mark.parametrize(
    "app",
    [
        create_catalog(CatalogSettings(**CHAOS)),  # type: ignore[arg-type]
        create_users(UsersSettings(**CHAOS)),  # type: ignore[arg-type]
        create_payment(PaymentSettings(**CHAOS)),  # type: ignore[arg-type]
        create_storefront(StorefrontSettings(**CHAOS)),  # type: ignore[arg-type]
    ],
    ids=["catalog", "users", "payment", "storefront"],
)
def test_no_route_or_dependency_runs_in_the_thread_pool(app: FastAPI) -> None:
    sync = {
        f"{route.path}: {getattr(call, '__qualname__', call)}"
        for route in app.routes
        if isinstance(route, APIRoute)
        for call in _calls(route.dependant)
        if not (inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(type(call).__call__))
    }
    assert sync == set()
