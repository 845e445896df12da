"""`make run`'s settings (`Config`): where the data lives, the ports, how many payment replicas, an existing
PostgreSQL to use instead of the embedded one and users' signing key, read once from the environment and checked
(a bad number or two processes on one port stop the launcher before it starts anything); and every process they
make, with its port and URL.

Settings, all optional, read from the environment:

- `SHOP_DATA_DIR`: where PostgreSQL's files, its log and the users' signing key live (default: `.data/` at the
  root of the repository).
- `SHOP_PG_PORT`: the embedded PostgreSQL's port on 127.0.0.1 (default 5433).
- `SHOP_STOREFRONT_PORT`, `SHOP_CATALOG_PORT`, `SHOP_USERS_PORT`, `SHOP_PAYMENT_PORT`: the services' ports
  (default: each one's port in `shop_devtools.topology`).
- `PAYMENT_REPLICAS`: how many payment processes to run (default: the base Deployment's replicas, 3; at most 5):
  `payment-1` on `SHOP_PAYMENT_PORT`, `payment-2` on the next port, and so on, all behind storefront (its
  `STOREFRONT_PAYMENT_URL` lists them). With several, one dying leaves the others taking the checkouts.
- `POSTGRES_ADMIN_URL`: a superuser URL of an existing PostgreSQL server; when set, no embedded server is started
  and that server gets the databases and roles.
- `USERS_JWT_PRIVATE_KEY`: the PEM of users' Ed25519 signing key; when unset, one is generated once into
  `<data dir>/users-jwt-key.pem`, so tokens stay valid across restarts.
- `PAYMENT_CREDENTIAL`, `STOREFRONT_CREDENTIAL`, `OPERATOR_CREDENTIAL`: the shop's own credentials
  (`shop_devtools.credentials`); each one unset is taken from `<data dir>/credentials.env`, which is generated
  once (mode 0600) and kept, so the operator (the drill, the bench) finds the one the running shop asks for there.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from shop_devtools.credentials import FILE_NAME
from shop_devtools.kubelet import pod_specs
from shop_devtools.processes import REPLICATED, Instance, LaunchError
from shop_devtools.topology import SERVICES
from shop_devtools.workspace import repository_root

DEFAULT_PG_PORT = 5433
MAX_REPLICAS = 5
MAX_PORT = 65535


@dataclass(frozen=True)
class Config:
    data_dir: Path
    pg_port: int
    ports: Mapping[str, int]
    """Each service's port (its first replica's)."""
    admin_url: str | None
    jwt_private_key: str | None
    payment_replicas: int = 1

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Self:
        ports = {s.name: _number(env, f"SHOP_{s.name.upper()}_PORT", s.port, MAX_PORT) for s in SERVICES}
        config = cls(
            data_dir=default_data_dir(env).resolve(),
            pg_port=_number(env, "SHOP_PG_PORT", DEFAULT_PG_PORT, MAX_PORT),
            ports=ports,
            admin_url=env.get("POSTGRES_ADMIN_URL") or None,
            jwt_private_key=env.get("USERS_JWT_PRIVATE_KEY") or None,
            payment_replicas=_number(env, "PAYMENT_REPLICAS", pod_specs()[REPLICATED].replicas, MAX_REPLICAS),
        )
        taken = [instance.port for instance in config.instances()] + [config.pg_port]
        if len(set(taken)) < len(taken) or max(taken) > MAX_PORT:
            described = ", ".join(f"{i.name} {i.port}" for i in config.instances())
            raise LaunchError(f"two processes were given the same port: {described}, PostgreSQL {config.pg_port}")
        return config

    def instances(self, service: str | None = None) -> list[Instance]:
        """Every process to run (of `service` only, when given): replicas take the ports after their service's."""
        found = []
        for each in (s for s in SERVICES if service in {None, s.name}):
            count = self.payment_replicas if each.name == REPLICATED else 1
            names = [each.name] if count == 1 else [f"{each.name}-{n + 1}" for n in range(count)]
            found += [Instance(each, name, self.ports[each.name] + n) for n, name in enumerate(names)]
        return found

    def url(self, service: str) -> str:
        """The service's URL as its clients are given it: every replica's, separated by commas."""
        return ",".join(instance.url for instance in self.instances(service))


def default_data_dir(env: Mapping[str, str]) -> Path:
    """`SHOP_DATA_DIR`, else `.data` at the root of the checkout (`WorkspaceError` outside one)."""
    return Path(env["SHOP_DATA_DIR"]) if env.get("SHOP_DATA_DIR") else repository_root() / ".data"


def credentials_file(data_dir: Path) -> Path:
    """Where `make run` keeps the shop's own credentials: `<data dir>/credentials.env`."""
    return data_dir / FILE_NAME


def _number(env: Mapping[str, str], name: str, default: int, most: int) -> int:
    """The setting `name`, a whole number from 1 to `most` (`default` when unset)."""
    raw = env.get(name) or str(default)
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise LaunchError(f"{name} must be a number from 1 to {most}, got {raw!r}")
    return int(raw)
