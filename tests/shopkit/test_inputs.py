"""shopkit.inputs: a URL that is not NUL-free UTF-8 is a 400 problem before any route runs; a value the database
cannot store that still reaches it is a 422, not a 500, and the transaction is rolled back."""

from collections.abc import Mapping
from typing import Annotated, Any

import httpx
import psycopg
import pytest
from fastapi import APIRouter, Body, Query
from sqlalchemy import text

from shopkit import ServiceSettings, SessionDep, create_app
from shopkit.inputs import TextOnlyUrlMiddleware, text_problem
from shopkit.problems import refused_value
from tests.conftest import client_for, running

PROBLEM_BASE = "https://resilient-shop.dev/problems/"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"/products", None),
        (b"", None),
        (b"q=%C3%A9l%C3%A9phant", None),
        (b"q=%2500", None),  # an escaped percent sign: the text "%00"
        (b"q=%zz", None),  # not an escape: taken as it is
        (b"/products/\xc3\xa9", None),  # raw UTF-8, as some clients send it
        (b"/products/%00abc", "a NUL character"),
        (b"q=%00", "a NUL character"),
        (b"/products/\x00", "a NUL character"),
        (b"q=%ff", "bytes that are not UTF-8"),
        (b"q=abc%C3", "bytes that are not UTF-8"),
        (b"q=%C0%AF", "bytes that are not UTF-8"),  # an overlong '/'
        (b"q=%ED%A0%80", "bytes that are not UTF-8"),  # a surrogate, which UTF-8 cannot hold
        (b"/products/\xff", "bytes that are not UTF-8"),
    ],
)
def test_text_problem(raw: bytes, problem: str | None) -> None:
    assert text_problem(raw) == problem


def test_a_decoded_path_is_checked_as_it_is() -> None:
    assert text_problem(b"%00", percent_encoded=False) is None
    assert text_problem(b"\x00", percent_encoded=False) == "a NUL character"


async def test_the_middleware_answers_a_problem_and_passes_the_rest_on() -> None:
    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=TextOnlyUrlMiddleware(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        refused = await client.get("/things/%00")
        assert refused.status_code == 400
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == PROBLEM_BASE + "malformed-url"
        assert refused.json()["detail"] == "The path holds a NUL character once percent-decoded."
        query = await client.get("/things", params={"q": "\x00"})
        assert query.json()["detail"] == "The query string holds a NUL character once percent-decoded."
        assert (await client.get("/things?q=%C3%A9")).status_code == 204
    assert reached == ["/things"]


storing = APIRouter()


@storing.post("/text")
async def store_text(session: SessionDep, value: Annotated[str, Body(embed=True)]) -> None:
    """A plain `str` straight to PostgreSQL: what the schemas' bounds and patterns keep from happening."""
    await session.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS notes (body text)"))
    await session.execute(text("INSERT INTO notes VALUES (:value)"), {"value": value})


@storing.get("/integer")
async def store_integer(session: SessionDep, value: Annotated[int, Query()]) -> None:
    await session.execute(text("SELECT CAST(:value AS integer)"), {"value": value})


@storing.get("/divide")
async def divide(session: SessionDep) -> None:
    await session.execute(text("SELECT 1 / 0"))


async def test_a_value_the_database_refuses_is_a_422_and_any_other_database_error_a_500(
    database_urls: Mapping[str, str],
) -> None:
    app = create_app(ServiceSettings(database_url=database_urls["catalog"]), title="t", routers=[storing])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with running(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.post("/text", json={"value": "fine"})).status_code == 200
        for response in (
            await client.post("/text", json={"value": "a\x00b"}),
            await client.get("/integer", params={"value": 2**40}),
        ):
            assert response.status_code == 422, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"] == PROBLEM_BASE + "unstorable-value"
            assert "psycopg" not in response.text.lower()
        bug = await client.get("/divide")
        assert bug.status_code == 500
        assert "division" not in bug.text


async def test_services_refuse_hostile_urls_before_their_routes() -> None:
    """Installed by `create_app`: a refused request never reaches a route, nor the database."""
    app = create_app(ServiceSettings(), title="t", routers=[storing])
    async with running(app), client_for(app, "t") as client:
        assert (await client.post("/text?x=%ff", json={"value": "fine"})).status_code == 400
        assert (await client.get("/integer/%00")).status_code == 400
        assert (await client.get("/healthz")).status_code == 200


def test_refused_values_are_the_database_refusing_a_value() -> None:
    """What `shopkit.problems.refused_value` counts on: psycopg's refusal, before the value is sent."""
    assert refused_value(psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"))
    assert refused_value(psycopg.errors.CharacterNotInRepertoire())
    assert refused_value(psycopg.errors.NumericValueOutOfRange())
    assert not refused_value(psycopg.errors.DivisionByZero())
    assert not refused_value(ValueError())
