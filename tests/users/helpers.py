"""Small helpers shared by the users tests."""

import httpx
import psycopg
import psycopg.rows

PASSWORD = "correct horse"


async def fetch_users(database_url: str) -> list[dict[str, object]]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = conn.cursor(row_factory=psycopg.rows.dict_row)
        await cursor.execute("SELECT id, email, name, password_hash, created_at FROM users ORDER BY created_at")
        return await cursor.fetchall()


async def register(
    client: httpx.AsyncClient, email: str = "ada@example.com", password: str = PASSWORD, name: str = "Ada"
) -> httpx.Response:
    return await client.post("/users", json={"email": email, "password": password, "name": name})


async def login(client: httpx.AsyncClient, email: str = "ada@example.com", password: str = PASSWORD) -> str:
    response = await client.post("/tokens", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    return assert_client_problem(response)


def assert_client_problem(response: httpx.Response) -> dict[str, object]:
    """A 4xx answered as RFC 9457 problem details."""
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == response.status_code
    return body
