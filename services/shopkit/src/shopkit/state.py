"""The typed state of a service: built once by `create_app`, filled by its lifespan, stored once on `app.state`
and read only through `state_of`."""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from shopkit.chaos import ChaosState
from shopkit.probes import ProbeState
from shopkit.settings import ServiceSettings

T = TypeVar("T")

_ATTRIBUTE = "service_state"


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    autocommit_engine: AsyncEngine
    """The same pool, each statement committing on its own (`shopkit.db.autocommit_engine`)."""


class Upstreams(Mapping[str, httpx.AsyncClient]):
    """The HTTP clients to the services this one calls, by name. A name the service does not call is a KeyError
    that says which names it does."""

    def __init__(self, clients: Mapping[str, httpx.AsyncClient] | None = None) -> None:
        self._clients = dict(clients or {})

    def __getitem__(self, name: str) -> httpx.AsyncClient:
        try:
            return self._clients[name]
        except KeyError:
            known = ", ".join(sorted(self._clients)) or "none while the lifespan has not started"
            raise KeyError(f"{name!r} is not an upstream of this service (it has: {known})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._clients)

    def __len__(self) -> int:
        return len(self._clients)


@dataclass(eq=False)
class ServiceState:
    """What every service has. `create_app` makes it, its lifespan fills the database and the upstreams."""

    settings: ServiceSettings
    probes: ProbeState
    chaos: ChaosState | None = None
    """Present only with `CHAOS_ENABLED=true`."""
    upstreams: Upstreams = field(default_factory=Upstreams)
    """Opened by the lifespan."""
    own_state: object = None
    """The service's own typed state (its `PaymentState`, ...), set by its factory or lifespan; read with `own`."""
    _database: Database | None = field(default=None, init=False, repr=False)

    @property
    def database(self) -> Database:
        if self._database is None:
            raise RuntimeError("this service has no database: DATABASE_URL is not set, or the lifespan has not started")
        return self._database

    @database.setter
    def database(self, database: Database) -> None:
        self._database = database

    def own(self, kind: type[T]) -> T:
        if not isinstance(self.own_state, kind):
            found = type(self.own_state).__name__ if self.own_state is not None else "unset (lifespan not started)"
            raise RuntimeError(f"this service's own state is not a {kind.__name__}: {found}")
        return self.own_state


def store_state(app: Starlette, state: ServiceState) -> None:
    setattr(app.state, _ATTRIBUTE, state)


def state_of(source: HTTPConnection | Starlette) -> ServiceState:
    """The state of the app serving `source` (a request), or of `source` itself (an app)."""
    app = source.app if isinstance(source, HTTPConnection) else source
    state = getattr(app.state, _ATTRIBUTE, None)
    if not isinstance(state, ServiceState):
        raise RuntimeError("this app has no service state: it was not built by shopkit.create_app")
    return state
