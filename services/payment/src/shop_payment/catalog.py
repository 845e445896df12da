"""The catalog as payment sees it: reserve stock under a key, then commit or release the reservation."""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
import structlog

from shop_contracts import LineItem, ProblemType
from shop_payment.exceptions import DependencyUnavailable, IdempotencyKeyReused, InsufficientStock, UnknownSku
from shopkit import PROBLEM_JSON, UpstreamError, send_with_retries

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ReservedLine:
    sku: str
    quantity: int
    unit_price_cents: int
    currency: str


@dataclass(frozen=True)
class Reservation:
    id: uuid.UUID
    lines: list[ReservedLine]


def _problem_slug(response: httpx.Response) -> str:
    if response.headers.get("content-type", "").startswith(PROBLEM_JSON):
        return str(response.json().get("type", "")).rsplit("/", 1)[-1]
    return ""


class CatalogClient:
    def __init__(self, http: httpx.AsyncClient, identity: Mapping[str, str]) -> None:
        self.http = http
        self.identity = dict(identity)
        """Payment's credential header: catalog's reservations answer no one else."""

    async def _post(self, path: str, *, key: str, json: object | None = None) -> httpx.Response:
        request = self.http.build_request("POST", path, json=json, headers={"Idempotency-Key": key, **self.identity})
        try:
            response = await send_with_retries(self.http, request)
        except httpx.HTTPError as exc:
            log.warning("catalog_unreachable", path=path, error_type=type(exc).__name__)
            raise DependencyUnavailable("The catalog cannot be reached; retry with the same Idempotency-Key.") from exc
        if response.status_code >= 500:
            raise DependencyUnavailable(f"The catalog answered {response.status_code}; retry with the same key.")
        return response

    async def reserve(self, key: str, items: list[LineItem]) -> Reservation:
        response = await self._post("/reservations", key=key, json={"items": [i.model_dump() for i in items]})
        if response.status_code == 201:
            body = response.json()
            return Reservation(
                id=uuid.UUID(body["id"]),
                lines=[
                    ReservedLine(**{k: line[k] for k in ReservedLine.__dataclass_fields__}) for line in body["items"]
                ],
            )
        slug, detail = _problem_slug(response), response.json().get("detail", "")
        if slug == ProblemType.INSUFFICIENT_STOCK:
            raise InsufficientStock(detail)
        if slug == ProblemType.UNKNOWN_SKU:
            raise UnknownSku(detail)
        if slug == ProblemType.IDEMPOTENCY_KEY_REUSED:
            raise IdempotencyKeyReused("This Idempotency-Key was used with a different request.")
        log.error("catalog_rejected_reservation", status=response.status_code, slug=slug)
        raise UpstreamError("The catalog rejected the reservation.")

    async def finish(self, reservation_id: uuid.UUID, *, sold: bool) -> str:
        """Commits (sold) or releases the reservation; returns the reservation's final status."""
        action = "commit" if sold else "release"
        response = await self._post(f"/reservations/{reservation_id}/{action}", key=f"{action}:{reservation_id}")
        if response.status_code == 200:
            return str(response.json()["status"])
        if _problem_slug(response) == ProblemType.INVALID_RESERVATION_STATE:
            return "conflict"
        log.error("catalog_rejected_finish", action=action, status=response.status_code)
        raise UpstreamError(f"The catalog refused to {action} reservation {reservation_id}.")
