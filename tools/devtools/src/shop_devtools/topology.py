"""The shop's topology, written once: its services, each with its package, its port, the services it calls (and the
setting that tells it where each one is), whether it has a database migrated by Alembic and which of the shop's own
credentials (`shop_devtools.credentials`) it reads.

`make run`, the images, the cluster commands, provisioning, the bench, the container proof and the tests take what
they need from here; tests/devtools/test_topology.py checks it against the services' packages and settings, the
rendered manifests and the migrations on disk. Pure data: importing it imports no service.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from graphlib import TopologicalSorter


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    """Where it listens unless told otherwise: its settings' default, `make run`'s, the container's and the
    Kubernetes Service's port alike."""
    upstreams: tuple[str, ...] = ()
    """The services it calls, each found through the setting `upstream_setting(upstream)` names."""
    has_database: bool = True
    credentials: tuple[str, ...] = ()
    """The shop's own credentials its settings read (`PAYMENT_CREDENTIAL`, ...): exactly what `make run`, compose,
    the container proof and the Deployments give it, no more."""

    @property
    def module(self) -> str:
        """Its package, which `python -m` serves (`shop_catalog`)."""
        return f"shop_{self.name}"

    @property
    def migrations(self) -> str:
        """Its Alembic script location (`shop_catalog:migrations`); only a service with a database has one."""
        return f"{self.module}:migrations"

    def upstream_setting(self, upstream: str) -> str:
        """The environment name of the URL (or comma-separated URLs) of `upstream` it calls: `PAYMENT_CATALOG_URL`."""
        return f"{self.name.upper()}_{upstream.upper()}_URL"


SERVICES = (
    Service(
        "storefront",
        8080,
        upstreams=("catalog", "users", "payment"),
        has_database=False,
        credentials=("STOREFRONT_CREDENTIAL", "OPERATOR_CREDENTIAL"),  # its own towards catalog; the one /ops/ asks
    ),
    Service("catalog", 8081, credentials=("PAYMENT_CREDENTIAL", "STOREFRONT_CREDENTIAL", "OPERATOR_CREDENTIAL")),
    Service("users", 8082),
    Service("payment", 8083, upstreams=("catalog", "users"), credentials=("PAYMENT_CREDENTIAL",)),
)
"""Every service, in the order `make run` starts them."""

BY_NAME: Mapping[str, Service] = {service.name: service for service in SERVICES}

SHOP_URL = f"http://localhost:{BY_NAME['storefront'].port}"
"""The shop on this machine: the storefront where `make run` and compose serve it and kind publishes it."""

LIBRARIES = ("shopkit", "contracts")
"""The other members under services/: libraries the services import (shopkit the plumbing, contracts what services
and clients agree on). No entry points, no image of their own: every image installs both beside its service."""

DATABASES = tuple(service for service in SERVICES if service.has_database)
"""The services with a database (a role, a database and migrations each)."""


_UPSTREAMS = {service.name: service.upstreams for service in SERVICES}
CALLEES_FIRST = tuple(BY_NAME[name] for name in TopologicalSorter(_UPSTREAMS).static_order())
"""Every service, each after the ones it calls (catalog, users, payment, storefront): the order the images are built
in and the bench and the container proof start them."""
