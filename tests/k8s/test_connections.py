"""PostgreSQL's connection limit holds the whole shop at its worst: every replica plus the one a rolling update
adds, each with every pool full (requests, the readiness probe's own connection, payment's provider, catalog's
LISTEN). Past `max_connections` a new connection is refused, and a refused pool is an outage."""

import inspect
import itertools

import pytest

from shop_catalog.settings import CatalogSettings
from shop_payment.settings import PaymentSettings
from shopkit import ServiceSettings, create_engine
from tests.k8s.conftest import RESILIENT, Render, Target
from tests.k8s.manifests import SHOP_SERVICES, container_env, pod_spec
from tests.k8s.test_profiles import app_container

POSTGRES_DEFAULT_MAX_CONNECTIONS = 100
RESERVED = 3 + 7
"""superuser_reserved_connections, and room for migrations, provisioning and a person with psql."""


def _setting(env: dict[str, str], name: str, settings: type[ServiceSettings], field: str) -> int:
    return int(env.get(name, settings.model_fields[field].default))


def max_connections(container_args: list[str]) -> int:
    for before, value in itertools.pairwise(container_args):
        if before == "-c" and value.startswith("max_connections="):
            return int(value.split("=", 1)[1])
    return POSTGRES_DEFAULT_MAX_CONNECTIONS


@pytest.mark.parametrize("target", RESILIENT)
def test_every_pool_of_every_replica_fits_postgres_max_connections(render: Render, target: Target) -> None:
    manifests = render(target)
    worst = 0
    for service in SHOP_SERVICES:
        if service == "storefront":  # no database
            continue
        env = container_env(app_container(manifests, service), manifests)
        per_pod = _setting(env, "DB_POOL_SIZE", ServiceSettings, "db_pool_size") + 1  # + the probe's connection
        if service == "payment":
            per_pod += _setting(env, "PAYMENT_PROVIDER_POOL_SIZE", PaymentSettings, "provider_pool_size")
        if service == "catalog" and env.get("CATALOG_CACHE_ENABLED", "true") == "true":
            per_pod += 1  # the LISTEN connection
        deployment = manifests.shop_deployment(service)
        surge = deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
        worst += per_pod * (deployment["spec"]["replicas"] + surge)
    (postgres,) = (
        c for c in pod_spec(manifests.get("StatefulSet", "postgres"))["containers"] if c["name"] == "postgres"
    )
    limit = max_connections(postgres.get("args", []))

    assert worst <= limit - RESERVED, f"{worst} connections at worst, {limit} allowed"
    assert CatalogSettings.model_fields["cache_enabled"].default is True
    assert inspect.signature(create_engine).parameters["max_overflow"].default == 0, "pools never grow past their size"
