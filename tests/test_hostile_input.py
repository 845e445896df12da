"""Hostile input in any parameter (a NUL, invalid UTF-8, an over-long string, a number past 64 bits)
is a 4xx problem+json that changes nothing, on every service directly and through the storefront.

What schemathesis cannot generate, one row each: raw bytes in the request target, percent-encoded bytes that are
not UTF-8, JSON strings with `\\u0000` or a lone surrogate, bodies that are not UTF-8. Each request is sent as an
ASGI scope built here, byte for byte as a server would pass it on (`raw_path` as received, `path` decoded the way
uvicorn decodes it), because httpx re-encodes what it is given. Several rows carry a body that would change the
shop if the request got through (a new user, a payment, a restock), so "nothing changed" is a real question.
"""

import json
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx
import psycopg
import pytest
import pytest_asyncio
from fastapi import FastAPI

from shop_catalog.main import create_app as create_catalog
from shop_catalog.settings import CatalogSettings
from shop_devtools.pg import EmbeddedPostgres
from shop_payment.main import create_app as create_payment
from shop_payment.settings import PaymentSettings
from shop_users.main import create_app as create_users
from shop_users.settings import UsersSettings
from tests.conftest import AS_OPERATOR, AS_PAYMENT, ClonedDatabases, Shop, open_shop, register_and_login

pytestmark = pytest.mark.asyncio(loop_scope="module")

SKU = "KB-ERGO-01"
APPROVED = "4242424242424242"
PROBLEM_BASE = "https://resilient-shop.dev/problems/"
BEYOND_64_BITS = 2**70

Headers = Sequence[tuple[bytes, bytes]]


def body(document: Any) -> bytes:
    """JSON as Python writes it: a NUL as `\\u0000`, a lone surrogate as `\\ud800`, any integer in full."""
    return json.dumps(document).encode()


def user(**fields: Any) -> bytes:
    return body(
        {"email": f"hostile-{uuid.uuid4().hex[:8]}@example.com", "password": "long enough", "name": "Ada"} | fields
    )


def line(**fields: Any) -> dict[str, Any]:
    return {"sku": SKU, "quantity": 1} | fields


@dataclass(frozen=True)
class Row:
    """One hostile request to a service, by its own path; `status` is what it must answer."""

    method: str
    target: bytes
    """The request target as sent on the wire: path and query, percent-encoded or raw bytes."""
    status: int
    auth: str | None = None
    """Whose credential goes with it: "payment", "operator" or "customer"."""
    content: bytes = b""
    headers: Headers = field(default_factory=tuple)


MALFORMED_URL = 400
INVALID = 422
MALFORMED_JSON = 400

ROWS: dict[str, Row] = {
    # A NUL or invalid UTF-8 in a query value, a path segment or a parameter name (percent-encoded).
    "catalog nul in query": Row("GET", b"/products?q=%00abc", MALFORMED_URL),
    "catalog nul in path": Row("GET", b"/products/%00abc", MALFORMED_URL),
    "catalog invalid utf-8 in query": Row("GET", b"/products?q=%ff", MALFORMED_URL),
    "catalog truncated utf-8 in query": Row("GET", b"/products?q=abc%C3", MALFORMED_URL),
    "catalog overlong utf-8 in query": Row("GET", b"/products?q=%C0%AF", MALFORMED_URL),
    "catalog utf-8 surrogate in query": Row("GET", b"/products?q=%ED%A0%80", MALFORMED_URL),
    "catalog invalid utf-8 in path": Row("GET", b"/products/%ff", MALFORMED_URL),
    "catalog nul in an integer": Row("GET", b"/products?limit=1%00", MALFORMED_URL),
    "catalog nul in a parameter name": Row("GET", b"/products?%00=1", MALFORMED_URL),
    "catalog nul in inventory query": Row("GET", b"/inventory?x=%00", MALFORMED_URL, auth="operator"),
    "catalog restock with nul in query": Row(
        "POST", b"/restock?x=%00", MALFORMED_URL, auth="operator", content=body({"at_least": 999_999, "skus": None})
    ),
    "catalog nul in reservation id": Row("GET", b"/reservations/%00", MALFORMED_URL, auth="payment"),
    "catalog invalid utf-8 in commit": Row("POST", b"/reservations/%ff/commit", MALFORMED_URL, auth="payment"),
    "catalog reservation with invalid utf-8 in query": Row(
        "POST", b"/reservations?x=%fe", MALFORMED_URL, auth="payment", content=body({"items": [line()]})
    ),
    "users nul in query": Row("GET", b"/users/me?x=%00", MALFORMED_URL, auth="customer"),
    "users registration with nul in query": Row("POST", b"/users?x=%00", MALFORMED_URL, content=user()),
    "users invalid utf-8 in jwks query": Row("GET", b"/.well-known/jwks.json?%ff", MALFORMED_URL),
    "users nul in an unknown path": Row("POST", b"/tokens/%00", MALFORMED_URL),
    "payment nul in path": Row("GET", b"/payments/%00", MALFORMED_URL, auth="customer"),
    "payment invalid utf-8 in path": Row("GET", b"/payments/%ff", MALFORMED_URL, auth="customer"),
    "payment nul in an integer": Row("GET", b"/payments?limit=1%00", MALFORMED_URL, auth="customer"),
    "payment checkout with nul in query": Row(
        "POST",
        b"/payments?x=%00",
        MALFORMED_URL,
        auth="customer",
        content=body({"items": [line()], "card_number": APPROVED}),
    ),
    # The same as raw bytes in the request target, as a server that does not refuse them would pass them on.
    "catalog raw nul in path": Row("GET", b"/products/\x00abc", MALFORMED_URL),
    "catalog raw invalid utf-8 in path": Row("GET", b"/products/\xc3", MALFORMED_URL),
    "catalog raw invalid utf-8 in query": Row("GET", b"/products?q=\xff", MALFORMED_URL),
    "payment raw nul in query": Row("GET", b"/payments?limit=\x00", MALFORMED_URL, auth="customer"),
    # Over-long strings.
    "catalog long query": Row("GET", b"/products?q=" + b"a" * 101, INVALID),
    "catalog very long query": Row("GET", b"/products?q=" + b"a" * 5000, INVALID),
    "catalog long sku in path": Row("GET", b"/products/" + b"A" * 65, INVALID),
    "catalog very long sku in path": Row("GET", b"/products/" + b"A" * 5000, INVALID),
    "catalog long sku in a reservation": Row(
        "POST", b"/reservations", INVALID, auth="payment", content=body({"items": [line(sku="A" * 65)]})
    ),
    "catalog long idempotency key": Row(
        "POST",
        b"/reservations",
        INVALID,
        auth="payment",
        content=body({"items": [line()]}),
        headers=((b"idempotency-key", b"k" * 256),),
    ),
    "catalog long sku in a restock": Row(
        "POST", b"/restock", INVALID, auth="operator", content=body({"at_least": 999_999, "skus": ["A" * 65]})
    ),
    "users long name": Row("POST", b"/users", INVALID, content=user(name="a" * 101)),
    "users long email": Row("POST", b"/users", INVALID, content=user(email="a" * 250 + "@example.com")),
    "users long password": Row("POST", b"/users", INVALID, content=user(password="p" * 129)),
    "users long login email": Row("POST", b"/tokens", INVALID, content=body({"email": "a" * 10_000, "password": "x"})),
    "payment long card number": Row(
        "POST", b"/payments", INVALID, auth="customer", content=body({"items": [line()], "card_number": "4" * 10_000})
    ),
    # Numbers past 64 bits, in a query, a path and a body.
    "catalog huge limit": Row("GET", b"/products?limit=99999999999999999999999", INVALID),
    "catalog huge offset": Row("GET", b"/products?offset=18446744073709551616", INVALID),
    "catalog huge negative offset": Row("GET", b"/products?offset=-9223372036854775809", INVALID),
    "catalog huge reservation id": Row("GET", b"/reservations/99999999999999999999999", INVALID, auth="payment"),
    "catalog huge quantity": Row(
        "POST", b"/reservations", INVALID, auth="payment", content=body({"items": [line(quantity=BEYOND_64_BITS)]})
    ),
    "catalog 2**64 quantity": Row(
        "POST", b"/reservations", INVALID, auth="payment", content=body({"items": [line(quantity=2**64)]})
    ),
    "catalog huge at_least": Row(
        "POST", b"/restock", INVALID, auth="operator", content=body({"at_least": BEYOND_64_BITS, "skus": None})
    ),
    "catalog huge negative at_least": Row(
        "POST", b"/restock", INVALID, auth="operator", content=body({"at_least": -BEYOND_64_BITS, "skus": None})
    ),
    "catalog at_least past a double": Row(
        "POST", b"/restock", INVALID, auth="operator", content=b'{"at_least": 1e400, "skus": null}'
    ),
    "catalog at_least of 5000 digits": Row(
        "POST", b"/restock", MALFORMED_JSON, auth="operator", content=b'{"at_least": 1' + b"0" * 5000 + b"}"
    ),
    "users number as name": Row("POST", b"/users", INVALID, content=user(name=BEYOND_64_BITS)),
    "payment huge limit": Row("GET", b"/payments?limit=99999999999999999999999", INVALID, auth="customer"),
    "payment huge id": Row("GET", b"/payments/18446744073709551616", INVALID, auth="customer"),
    "payment huge quantity": Row(
        "POST",
        b"/payments",
        INVALID,
        auth="customer",
        content=body({"items": [line(quantity=BEYOND_64_BITS)], "card_number": APPROVED}),
    ),
    # JSON strings with a NUL or a lone surrogate, and bodies that are not UTF-8.
    "users nul in email": Row(
        "POST",
        b"/users",
        INVALID,
        content=b'{"email":"a\\u0000b@x.io","password":"long enough","name":"Ada"}',
    ),
    "users nul in name": Row("POST", b"/users", INVALID, content=user(name="Ada\x00")),
    "users surrogate in name": Row("POST", b"/users", INVALID, content=user(name="Ada\ud800")),
    "users nul in password": Row("POST", b"/users", INVALID, content=user(password="long\x00enough")),
    "users surrogate in password": Row("POST", b"/users", INVALID, content=user(password="long\udfffenough")),
    "users invalid utf-8 body": Row(
        "POST", b"/users", MALFORMED_JSON, content=b'{"email":"\xff@x.io","password":"long enough","name":"Ada"}'
    ),
    "users nul in login email": Row(
        "POST", b"/tokens", INVALID, content=body({"email": "a\x00b@x.io", "password": "long enough"})
    ),
    "users surrogate in login email": Row(
        "POST", b"/tokens", INVALID, content=body({"email": "a\udc80@x.io", "password": "long enough"})
    ),
    "users nul in login password": Row(
        "POST", b"/tokens", INVALID, content=body({"email": "ada@example.com", "password": "\x00"})
    ),
    "users invalid utf-8 login": Row(
        "POST", b"/tokens", MALFORMED_JSON, content=b'{"email":"ada@example.com","password":"\xc3\x28"}'
    ),
    "catalog nul in sku": Row(
        "POST", b"/reservations", INVALID, auth="payment", content=body({"items": [line(sku="KB\x00ERGO")]})
    ),
    "catalog surrogate in sku": Row(
        "POST", b"/reservations", INVALID, auth="payment", content=body({"items": [line(sku="KB\ud800")]})
    ),
    "catalog invalid utf-8 reservation": Row(
        "POST", b"/reservations", MALFORMED_JSON, auth="payment", content=b'{"items":[{"sku":"\xff","quantity":1}]}'
    ),
    "catalog nul in restocked sku": Row(
        "POST", b"/restock", INVALID, auth="operator", content=body({"at_least": 999_999, "skus": ["\x00"]})
    ),
    "catalog invalid utf-8 restock": Row(
        "POST", b"/restock", MALFORMED_JSON, auth="operator", content=b'{"at_least": 999999, "skus": ["\xfe"]}'
    ),
    "payment nul in card number": Row(
        "POST",
        b"/payments",
        INVALID,
        auth="customer",
        content=body({"items": [line()], "card_number": "4242\x00424242424242"}),
    ),
    "payment nul in sku": Row(
        "POST",
        b"/payments",
        INVALID,
        auth="customer",
        content=body({"items": [line(sku="\x00")], "card_number": APPROVED}),
    ),
    "payment invalid utf-8 body": Row(
        "POST",
        b"/payments",
        MALFORMED_JSON,
        auth="customer",
        content=b'{"items":[{"sku":"KB-ERGO-01","quantity":1}],"card_number":"\xf0\x28\x8c\x28"}',
    ),
    # Headers: a NUL or bytes that are not UTF-8, where a server passes them on (h11 and httptools refuse a NUL
    # themselves, with a plain 400; so does the gateway's HTTP client over a real connection, with a 400 problem).
    "catalog nul in idempotency key": Row(
        "POST",
        b"/reservations",
        INVALID,
        auth="payment",
        content=body({"items": [line()]}),
        headers=((b"idempotency-key", b"key\x00"),),
    ),
    "payment invalid utf-8 in idempotency key": Row(
        "POST",
        b"/payments",
        INVALID,
        auth="customer",
        content=body({"items": [line()], "card_number": APPROVED}),
        headers=((b"idempotency-key", b"key-\xff\xfe"),),
    ),
    "payment nul in idempotency key": Row(
        "POST",
        b"/payments",
        INVALID,
        auth="customer",
        content=body({"items": [line()], "card_number": APPROVED}),
        headers=((b"idempotency-key", b"key\x00"),),
    ),
    "users nul in a bearer token": Row("GET", b"/users/me", 401, headers=((b"authorization", b"Bearer abc\x00def"),)),
    "catalog nul in a credential": Row("GET", b"/inventory", 401, headers=((b"authorization", b"Bearer abc\x00def"),)),
}

PUBLIC = (b"/products", b"/users", b"/tokens", b"/.well-known", b"/payments")
OPERATOR_DOOR = (b"/inventory", b"/restock")


def gateway_target(target: bytes) -> bytes | None:
    """Where the storefront serves `target`: the public API under `/api`, inventory and restock under `/ops`."""
    if target.startswith(PUBLIC):
        return b"/api" + target
    if target.startswith(OPERATOR_DOOR):
        return b"/ops" + target
    return None  # reservations: payment's alone, never through the storefront


@dataclass(frozen=True)
class Scenario:
    service: str
    target: bytes
    status: int
    row: Row


def scenarios() -> dict[str, Scenario]:
    every: dict[str, Scenario] = {}
    for name, row in ROWS.items():
        service = name.split()[0]
        every[name] = Scenario(service, row.target, row.status, row)
        if (through := gateway_target(row.target)) is not None:
            every[name.replace(service, "storefront", 1)] = Scenario("storefront", through, row.status, row)
    return every


SCENARIOS = scenarios()


async def call_asgi(
    app: FastAPI, method: str, target: bytes, *, headers: Headers = (), content: bytes = b""
) -> httpx.Response:
    """`app`'s answer to a request with exactly these bytes, passed on the way uvicorn passes a request on."""
    raw_path, _, query = target.partition(b"?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(raw_path.decode("latin-1")),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": [
            (b"host", b"shop.test"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(content)).encode()),
            *headers,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("shop.test", 80),
        "extensions": {},
    }
    sent = False
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": content, "more_body": False}

    async def send(message: Any) -> None:
        messages.append(dict(message))

    await app(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return httpx.Response(start["status"], headers=start.get("headers", []), content=payload)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shop(postgres: EmbeddedPostgres, template_urls: dict[str, str]) -> AsyncIterator[Shop]:
    """One shop for the whole table: each row checks that it changed nothing, so they need not be apart."""
    databases = ClonedDatabases(postgres)
    try:
        async with open_shop(databases) as opened:
            yield opened
    finally:
        databases.drop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def credentials(shop: Shop) -> Mapping[str, Mapping[str, str]]:
    customer = await register_and_login(shop.users)
    return {"payment": AS_PAYMENT, "operator": AS_OPERATOR, "customer": customer}


def count(shop: Shop, database: str, table: str) -> int:
    with psycopg.connect(shop.database_urls[database]) as connection:
        row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 (a table name of ours)
        assert row is not None
        return int(row[0])


async def snapshot(shop: Shop) -> dict[str, Any]:
    """What a hostile request could have changed: the stock (through the operator's view) and every row count."""
    inventory = await shop.catalog.get("/inventory", headers=AS_OPERATOR)
    assert inventory.status_code == 200, inventory.text
    return {
        "inventory": inventory.json(),
        "reservations": count(shop, "catalog", "reservations"),
        "users": count(shop, "users", "users"),
        "failed logins": count(shop, "users", "login_failures"),
        "payments": count(shop, "payment", "payments"),
    }


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    problem = response.json()
    assert {"type", "title", "status", "detail"} <= problem.keys()
    assert problem["status"] == status
    assert problem["type"].startswith((PROBLEM_BASE, "about:blank"))
    assert "Traceback" not in response.text
    assert "psycopg" not in response.text.lower()


@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=SCENARIOS.keys())
async def test_hostile_input_is_a_4xx_problem_that_changes_nothing(
    scenario: Scenario, shop: Shop, credentials: Mapping[str, Mapping[str, str]]
) -> None:
    row = scenario.row
    headers: list[tuple[bytes, bytes]] = []
    if row.auth is not None:
        headers += [(k.lower().encode(), v.encode()) for k, v in credentials[row.auth].items()]
    if row.method == "POST" and not any(name == b"idempotency-key" for name, _ in row.headers):
        headers.append((b"idempotency-key", uuid.uuid4().hex.encode()))
    headers += row.headers
    before = await snapshot(shop)

    response = await call_asgi(
        shop.apps[scenario.service], row.method, scenario.target, headers=headers, content=row.content
    )

    assert_problem(response, scenario.status)
    assert await snapshot(shop) == before


@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("storefront", "/api/products?q=%00abc"),
        ("catalog", "/products?q=%00abc"),
        ("catalog", "/products/%00abc"),
        ("storefront", "/api/products/%00abc"),
    ],
)
async def test_the_reported_nul_bytes_are_refused_as_sent_by_httpx(service: str, path: str, shop: Shop) -> None:
    """Reproductions of what were 500s, exactly as a client library sends them."""
    client: httpx.AsyncClient = getattr(shop, service)
    response = await client.get(path)
    assert_problem(response, MALFORMED_URL)
    assert response.json()["type"] == PROBLEM_BASE + "malformed-url"


async def test_valid_utf8_in_the_url_still_works(shop: Shop) -> None:
    """The check refuses what is not text, nothing else: an accented search and a percent sign pass."""
    for client, prefix in ((shop.catalog, ""), (shop.storefront, "/api")):
        searched = await client.get(prefix + "/products?q=%C3%A9l%C3%A9phant%20%25")
        assert searched.status_code == 200, searched.text
        assert searched.json()["total"] == 0
        found = await client.get(prefix + f"/products/{SKU}")
        assert found.status_code == 200


def unbounded(schema: Mapping[str, Any], components: Mapping[str, Any], where: str) -> Iterator[str]:
    """Where `schema` takes a string without a length bound, a number without both bounds, or a list without a size
    bound: what would let an over-long string, a number past 64 bits or a lone surrogate through validation."""
    if "$ref" in schema:
        yield from unbounded(components[schema["$ref"].rsplit("/", 1)[-1]], components, where)
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for index, option in enumerate(schema.get(key, ())):
            yield from unbounded(option, components, f"{where}|{index}")
    if "enum" in schema or "const" in schema:
        return
    kind = schema.get("type")
    bounded_above = {"maximum", "exclusiveMaximum"} & schema.keys()
    bounded_below = {"minimum", "exclusiveMinimum"} & schema.keys()
    if (kind == "string" and "maxLength" not in schema and schema.get("format") != "uuid") or (
        kind in {"integer", "number"} and not (bounded_above and bounded_below)
    ):
        yield where
    elif kind == "array":
        if "maxItems" not in schema:
            yield where
        yield from unbounded(schema.get("items", {}), components, where + "[]")
    elif kind == "object":
        for name, member in schema.get("properties", {}).items():
            yield from unbounded(member, components, f"{where}.{name}")


async def test_every_string_and_number_a_service_takes_is_bounded() -> None:
    """The schemas are what refuses hostile text in a JSON body, at no cost beyond the validation done anyway
    (`shopkit.inputs`): pydantic refuses a lone surrogate in any string it checks a length of, the bounds refuse
    over-long strings and numbers past 64 bits. A new unbounded field fails here, not in production."""
    apps = {
        "catalog": create_catalog(CatalogSettings()),
        "users": create_users(UsersSettings()),
        "payment": create_payment(PaymentSettings()),
    }
    found: list[str] = []
    for service, app in apps.items():
        document = app.openapi()
        components = document.get("components", {}).get("schemas", {})
        for path, item in document["paths"].items():
            for method, operation in item.items():
                where = f"{service} {method.upper()} {path}"
                for parameter in operation.get("parameters", ()):
                    found += unbounded(parameter["schema"], components, f"{where} {parameter['name']}")
                for media in operation.get("requestBody", {}).get("content", {}).values():
                    found += unbounded(media["schema"], components, f"{where} body")
    assert found == []
