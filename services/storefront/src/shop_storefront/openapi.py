"""The shop's public API as one OpenAPI document: the operations of catalog, users and payment that the gateway
routes, under `/api`, with their schemas, problems, bearer security and `Idempotency-Key` headers.

Built from the services' own documents when first asked for (and again after `REFRESH_SECONDS`), so it is always
what the running services answer; the storefront imports none of them.
"""

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx

from shop_storefront.exceptions import UpstreamUnavailable
from shop_storefront.proxy import ROUTES
from shopkit import problem_response
from shopkit.openapi import SCHEMA_REF

PUBLIC_PREFIX = "/api"
REFRESH_SECONDS = 60.0


def _rename_schemas(document: dict[str, Any], renames: Mapping[str, str]) -> dict[str, Any]:
    """`document` with its schemas renamed, every `$ref` to them included."""
    text = json.dumps(document)
    for old, new in renames.items():
        text = text.replace(f'"{SCHEMA_REF}{old}"', f'"{SCHEMA_REF}{new}"')
    renamed: dict[str, Any] = json.loads(text)
    schemas = renamed.get("components", {}).get("schemas", {})
    for old, new in renames.items():
        schemas[new] = schemas.pop(old)
    return renamed


def merge(documents: Mapping[str, dict[str, Any]], *, version: str) -> dict[str, Any]:
    """One document from each service's (by service name): the paths the gateway routes to that service, under
    `/api`; a schema two services define differently is kept under both names (`PaymentLineItem`)."""
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "resilient-shop",
            "version": version,
            "description": "The shop's public API, through the storefront. Errors are `application/problem+json`.",
        },
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": {}},
    }
    schemas, security = merged["components"]["schemas"], merged["components"]["securitySchemes"]
    for service, document in documents.items():
        theirs = document.get("components", {}).get("schemas", {})
        clashes = {
            name: service.capitalize() + name for name in theirs if schemas.get(name, theirs[name]) != theirs[name]
        }
        document = _rename_schemas(document, clashes) if clashes else document
        for path, item in document.get("paths", {}).items():
            if ROUTES.get(path.strip("/").split("/")[0]) == service:
                for operation in item.values():  # the gateway's own answer to a header it cannot pass on
                    operation.setdefault("responses", {}).setdefault("400", problem_response(400))
                merged["paths"][PUBLIC_PREFIX + path] = item
        schemas.update(document.get("components", {}).get("schemas", {}))
        security.update(document.get("components", {}).get("securitySchemes", {}))
    merged["paths"] = dict(sorted(merged["paths"].items()))
    return merged


class PublicApi:
    """The merged document, kept for `REFRESH_SECONDS`; a service that cannot say its API makes it a 503."""

    def __init__(self, upstreams: Mapping[str, httpx.AsyncClient], *, version: str) -> None:
        self.upstreams = upstreams
        self.version = version
        self._document: dict[str, Any] | None = None
        self._built_at = float("-inf")
        self._building = asyncio.Lock()

    async def _fetch(self, service: str) -> dict[str, Any]:
        try:
            response = await self.upstreams[service].get("/openapi.json")
            response.raise_for_status()
            document: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise UpstreamUnavailable(f"The {service} service cannot say its API now; retry shortly.") from exc
        return document

    async def document(self) -> dict[str, Any]:
        async with self._building:
            if self._document is None or time.monotonic() - self._built_at > REFRESH_SECONDS:
                services = sorted(set(ROUTES.values()))
                fetched = await asyncio.gather(*(self._fetch(service) for service in services))
                self._document = merge(dict(zip(services, fetched, strict=True)), version=self.version)
                self._built_at = time.monotonic()
            return self._document
