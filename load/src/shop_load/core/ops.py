"""The operator at the storefront's door (`/ops/`): how the drill, the bench, the container proof and the invariant
checks read the inventory (`GET /ops/inventory`) and restock (`POST /ops/restock`), the same way on every target
(make run, compose, the container proof, kind, minikube), with the operator's credential. Customers (the Locust
file, the drill's shoppers) never come here: they use the public API only.

Where the credential comes from, the first found:
1. `OPERATOR_CREDENTIAL` in the environment (a shop elsewhere, a rotation by hand);
2. a file named on the command line (`--credentials FILE`), with an `OPERATOR_CREDENTIAL=` line;
3. the target's own: make run's `<data dir>/credentials.env`, which `make compose-up` keeps for compose too (the
   same `.data/credentials.env`), or on a cluster the `credentials` Secret the storefront's pods read, through the
   Kubernetes API (`shop_devtools.cluster.kube.Cluster.operator_credential`).

The value stays out of every repr, message, report and ledger: only where it came from (`Operator.source`) is said.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shop_devtools.credentials import OPERATOR, bearer, read_env_file

INVENTORY_PATH = "/ops/inventory"
RESTOCK_PATH = "/ops/restock"


class CredentialMissing(Exception):
    """A file named as holding the operator's credential does not; the message says which."""


@dataclass(frozen=True)
class Operator:
    """The operator's credential (never shown) and where it was found."""

    credential: str = field(repr=False)
    source: str
    """Where the credential came from (`$OPERATOR_CREDENTIAL`, a file, a Secret), for messages."""

    @property
    def headers(self) -> dict[str, str]:
        """The credential as a bearer token (the first value, when it lists two during a rotation)."""
        return bearer(self.credential)

    async def _send(
        self, client: httpx.AsyncClient, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> Any:
        response = await client.request(method, path, json=body, headers=self.headers)
        if response.status_code != 200:
            refused = response.status_code in {401, 403}
            why = f": the storefront refused the operator's credential from {self.source}" if refused else ""
            raise httpx.HTTPError(f"{method} {path} answered {response.status_code}{why}")
        try:
            return response.json()
        except ValueError:
            raise httpx.HTTPError(f"{method} {path} answered 200 without JSON") from None

    async def inventory(self, client: httpx.AsyncClient) -> list[dict[str, Any]]:
        """Stock, held and sold per product (`GET /ops/inventory`); an `httpx.HTTPError` when the shop does not
        answer it with 200."""
        if not isinstance(body := await self._send(client, "GET", INVENTORY_PATH), list):
            raise httpx.HTTPError(f"GET {INVENTORY_PATH} answered no list")
        return body

    async def restock(self, client: httpx.AsyncClient, at_least: int, skus: Sequence[str] | None = None) -> list[str]:
        """Raises the stock of `skus` (every product when None) to at least `at_least`, in one transaction
        (`POST /ops/restock`); returns the products whose stock was below and now equals it."""
        request = {"at_least": at_least, "skus": list(skus) if skus is not None else None}
        body = await self._send(client, "POST", RESTOCK_PATH, request)
        if not isinstance(body, dict) or not isinstance(body.get("inventory"), list):
            raise httpx.HTTPError(f"POST {RESTOCK_PATH} answered no inventory")
        return [str(sku) for sku in body.get("raised") or []]


def from_file(path: Path) -> Operator | None:
    """The operator's credential of an env file (make run's `credentials.env`, compose's, the cluster's generated
    one); None when there is no such file or it has no such line."""
    try:
        value = read_env_file(path).get(OPERATOR)
    except FileNotFoundError:
        return None
    return Operator(value, str(path)) if value else None


def explicit(environ: Mapping[str, str], file: Path | None) -> Operator | None:
    """The credential given on purpose: `OPERATOR_CREDENTIAL` in `environ`, else `file` (`CredentialMissing` when
    that file does not hold one); None when neither is given and the target's own should be used."""
    if value := environ.get(OPERATOR):
        return Operator(value, f"${OPERATOR}")
    if file is None:
        return None
    if (found := from_file(file)) is None:
        raise CredentialMissing(f"{file} holds no {OPERATOR}=... line")
    return found
