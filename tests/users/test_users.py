import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.users.helpers import assert_client_problem, assert_problem, fetch_users, register


async def test_register_returns_the_user_without_the_password(users: httpx.AsyncClient, database_url: str) -> None:
    response = await register(users, email="Ada.Lovelace@Example.COM", name="  Ada Lovelace ")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "name", "created_at"}
    assert body["email"] == "Ada.Lovelace@example.com"
    assert body["name"] == "Ada Lovelace"
    [row] = await fetch_users(database_url)
    assert str(row["id"]) == body["id"]
    assert str(row["password_hash"]).startswith("$argon2id$")
    assert "correct horse" not in str(row["password_hash"])


@pytest.mark.parametrize("email", ["ada@example.com", "ADA@EXAMPLE.COM", "Ada@example.com"])
async def test_duplicate_email_in_any_case_is_a_conflict(
    users: httpx.AsyncClient, database_url: str, email: str
) -> None:
    assert (await register(users, email="ada@example.com")).status_code == 201

    body = assert_problem(await register(users, email=email, name="Other"), 409)

    assert str(body["type"]).endswith("/email-taken")
    assert len(await fetch_users(database_url)) == 1


@pytest.mark.parametrize(
    "email",
    [
        "",
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "ada@@example.com",
        "ada@exa mple.com",
        " ada@example.com",
        "ada..l@example.com",
        "ada@-example.com",
        "ada@example.c",
        "ädä@example.com",
        "ada\x00@example.com",
        "a" * 65 + "@example.com",
        "ada@" + "a" * 250 + ".com",
    ],
)
async def test_invalid_email_is_422(users: httpx.AsyncClient, database_url: str, email: str) -> None:
    body = assert_problem(await register(users, email=email), 422)

    assert body["errors"]
    assert await fetch_users(database_url) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("password", "short77"), ("password", "x" * 129), ("name", ""), ("name", "   "), ("name", "x" * 101)],
)
async def test_out_of_bounds_password_or_name_is_422(
    users: httpx.AsyncClient, database_url: str, field: str, value: str
) -> None:
    payload = {"email": "ada@example.com", "password": "correct horse", "name": "Ada", field: value}

    assert_problem(await users.post("/users", json=payload), 422)
    assert await fetch_users(database_url) == []


async def test_validation_errors_do_not_echo_the_password(users: httpx.AsyncClient) -> None:
    response = await register(users, password="hunter2")

    body = assert_problem(response, 422)
    assert body["errors"] == [
        {"loc": ["body", "password"], "msg": "String should have at least 8 characters", "type": "string_too_short"}
    ]
    assert "hunter2" not in response.text


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "ada@example.com", "password": "correct horse"},
        {},
        {"email": 1, "password": "correct horse", "name": "Ada"},
        {"email": "ada@example.com", "password": ["correct horse"], "name": "Ada"},
        {"email": "ada@example.com", "password": "correct horse", "name": None},
        {"email": "ada@example.com", "password": "correct horse", "name": "Ada", "is_admin": True},
        [],
        "ada@example.com",
    ],
)
async def test_wrong_shape_is_422(users: httpx.AsyncClient, database_url: str, payload: object) -> None:
    assert_problem(await users.post("/users", json=payload), 422)
    assert await fetch_users(database_url) == []


@pytest.mark.parametrize("content", [b"{", b'{"email": "ada@example.com",', b"\xff\xfe", b"not json"])
async def test_malformed_json_is_400(users: httpx.AsyncClient, database_url: str, content: bytes) -> None:
    response = await users.post("/users", content=content, headers={"content-type": "application/json"})

    assert_problem(response, 400)
    assert await fetch_users(database_url) == []


async def test_oversized_body_is_413(users: httpx.AsyncClient, database_url: str) -> None:
    response = await register(users, name="x" * 100_000)

    assert_problem(response, 413)
    assert await fetch_users(database_url) == []


async def test_oversized_streamed_body_is_refused(users: httpx.AsyncClient, database_url: str) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "ada@example.com", "password": "correct horse", "name": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    response = await users.post("/users", content=chunks(), headers={"content-type": "application/json"})

    assert_client_problem(response)
    assert await fetch_users(database_url) == []


async def test_lone_surrogate_in_json_is_rejected(users: httpx.AsyncClient, database_url: str) -> None:
    content = b'{"email": "ada@example.com", "password": "correct \\ud800horse", "name": "Ada \\ud800"}'

    response = await users.post("/users", content=content, headers={"content-type": "application/json"})

    assert_client_problem(response)
    assert await fetch_users(database_url) == []


async def test_concurrent_registrations_of_one_email_create_exactly_one_user(
    users: httpx.AsyncClient, database_url: str
) -> None:
    emails = [f"{'RACE' if i % 2 else 'race'}@example.com" for i in range(10)]

    responses = await asyncio.gather(*(register(users, email=email) for email in emails))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 9
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409)
    assert len(await fetch_users(database_url)) == 1
