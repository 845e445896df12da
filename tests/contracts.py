"""What the deployment files (Dockerfile, docker-compose.yml, the Kubernetes manifests) must agree on with the code:
the environment names each service reads, its console script, its port and its routes.

Everything here is computed from the services themselves (their settings classes, installed entry points and
FastAPI apps), never restated, so a renamed setting or route breaks the deployment tests that rely on it; which
services there are comes from `shop_devtools.topology`.
"""

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from fastapi import FastAPI
from pydantic import AliasChoices, AliasPath
from pydantic_settings import BaseSettings
from starlette.routing import Match

from shop_devtools.topology import CALLEES_FIRST
from shopkit import ServiceSettings

SERVICES = tuple(service.name for service in CALLEES_FIRST)


def accepted_env_names(settings_class: type[BaseSettings]) -> set[str]:
    """The environment variable names (upper case) a pydantic-settings class reads.

    A field with a validation alias is read under the alias's names only (the shared settings' `AliasChoices`,
    e.g. `DATABASE_URL`), whatever the prefix; any other field under `env_prefix` + its name (`PAYMENT_USERS_URL`).
    Names are compared in upper case: the services' settings are case-insensitive.
    """
    if settings_class.model_config.get("case_sensitive"):
        raise ValueError(f"{settings_class.__name__} is case-sensitive: upper-casing its names would be wrong")
    prefix = str(settings_class.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for field_name, field in settings_class.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {choice.upper() for choice in alias.choices if isinstance(choice, str)}
        elif isinstance(alias, str):
            names.add(alias.upper())
        elif isinstance(alias, AliasPath):
            raise ValueError(f"{settings_class.__name__}.{field_name}: an AliasPath is not an environment name")
        else:
            names.add((prefix + field_name).upper())
    return names


def route_exists(app: FastAPI, path: str, method: str = "GET") -> bool:
    """Whether `method path` reaches a route of `app` (through included routers too), as Starlette routes it."""
    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }
    return any(route.matches(scope)[0] is Match.FULL for route in app.router.routes)


@dataclass(frozen=True)
class ServiceContract:
    """One service as its deployment sees it."""

    name: str

    @property
    def package(self) -> str:
        return f"shop_{self.name}"

    @property
    def settings_class(self) -> type[ServiceSettings]:
        module = importlib.import_module(f"{self.package}.settings")
        classes = [
            value
            for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, ServiceSettings) and value is not ServiceSettings
        ]
        if len(classes) != 1:
            raise LookupError(f"{module.__name__} defines {len(classes)} ServiceSettings subclasses, not one")
        return classes[0]

    @property
    def env_names(self) -> set[str]:
        return accepted_env_names(self.settings_class)

    @property
    def console_script(self) -> str:
        """The installed `[project.scripts]` command that serves this service (`shop-catalog`)."""
        scripts = [ep.name for ep in entry_points(group="console_scripts") if ep.value == f"{self.package}.main:serve"]
        if len(scripts) != 1:
            raise LookupError(f"{len(scripts)} console scripts run {self.package}.main:serve: {scripts}")
        return scripts[0]

    @property
    def has_database(self) -> bool:
        """Whether the service has Alembic migrations, hence a `migrate` command and a database."""
        return getattr(importlib.import_module(f"{self.package}.main"), "MIGRATIONS", None) is not None

    @property
    def commands(self) -> list[list[str]]:
        """Every argv that serves or migrates this service."""
        serve = [[self.console_script], [self.console_script, "serve"]]
        return [*serve, [self.console_script, "migrate"]] if self.has_database else serve

    @property
    def default_port(self) -> int:
        default = self.settings_class.model_fields["port"].default
        assert isinstance(default, int)
        return default

    def app(self) -> FastAPI:
        """The service's app as its defaults build it (chaos off, nothing connected)."""
        factory = importlib.import_module(f"{self.package}.main").create_app
        app: FastAPI = factory(self.settings_class(chaos_enabled=False, environment="development"))
        return app

    def has_route(self, path: str, method: str = "GET") -> bool:
        return route_exists(_app(self.name), path, method)


@cache
def _app(service: str) -> FastAPI:
    return ServiceContract(service).app()


def service_contracts() -> Mapping[str, ServiceContract]:
    return {name: ServiceContract(name) for name in SERVICES}
